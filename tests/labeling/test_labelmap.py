"""Label-set changes between versions: a draft's label mapping (rename, merge, split) validated against the
previous version's labels, the draft's and the gold set; the gold set, the draft preview and the gates reading gold
through it; split gold items listed for relabelling and publishing waiting for them (or an override with a reason);
publishing rewriting the gold set with events, and older versions, events and runs left as they were."""

import pytest
from django.core.exceptions import PermissionDenied

from labeling.models import Candidate, GateRecord, GoldLabel, GoldLabelEvent, GoldRelabel
from labeling.selectors import draft_gold, draft_preview_state
from labeling.selectors.gates import draft_gate_check
from labeling.services import (
    GatesFailed,
    GoldError,
    OverrideReasonMissing,
    draft_preview_start,
    gold_relabel_set,
)
from policyhub import services as policy_services
from policyhub.labelmap import mapping_rows
from policyhub.models import ContentValidationError, PolicyVersion
from tests.conftest import LABELS

from .gates_helpers import finish, set_gates
from .gold_helpers import make_gold, teacher
from .labelmap_helpers import MAPPED_DRAFT, MAPPING, NEW_LABELS, SPLIT_PAIR, pair, save
from .test_gold_scoring import GOLD, PUBLISHED


def errors_of(excinfo) -> list[tuple[str | None, str]]:
    return [(e.field, e.message) for e in excinfo.value.content_errors]


def publish(draft, owner, **kwargs):
    draft.refresh_from_db()
    return policy_services.policy_version_publish(version=draft, user=owner, revision=draft.revision, **kwargs)


# --- validation --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"great_match": ["no_match"]}, ("great_match", "'great_match' is not a label of the previous version")),
        ({"strong_match": ["top_match"]}, ("strong_match", "strong_match → 'top_match': 'top_match' is not a label")),
        ({"strong_match": []}, ("strong_match", "strong_match maps to no new label")),
    ],
)
def test_a_bad_mapping_entry_is_refused_naming_it_and_nothing_is_saved(pairs, policy, owner, mapping, expected):
    draft = policy.versions.get(number=2)
    labels = [{**label, "key": "great_match"} if label["key"] == "strong_match" else label for label in draft.labels]

    with pytest.raises(ContentValidationError) as excinfo:
        save(draft, owner, labels=labels, mapping={"strong_match": ["great_match"], **mapping})

    field, message = expected
    assert any(f == field and m.startswith(message) for f, m in errors_of(excinfo)), errors_of(excinfo)
    draft.refresh_from_db()
    assert (draft.revision, draft.label_mapping, draft.label_keys) == (
        1,
        {},
        ["strong_match", "partial_match", "no_match"],
    )


def test_removing_a_label_gold_uses_needs_a_mapping(pairs, policy, owner):
    make_gold(policy, GOLD, user=owner)
    draft = policy.versions.get(number=2)
    without_partial = [label for label in draft.labels if label["key"] != "partial_match"]

    with pytest.raises(ContentValidationError) as excinfo:
        save(draft, owner, labels=without_partial)

    assert errors_of(excinfo) == [
        ("partial_match", "partial_match is removed but gold labels use it: map it to the label(s) it becomes.")
    ]
    merged = save(draft, owner, labels=without_partial, mapping={"partial_match": ["no_match"]})
    assert merged.label_mapping == {"partial_match": ["no_match"]}
    assert [
        (r.old, r.new, r.kind) for r in mapping_rows(merged.label_mapping, old_keys=merged.based_on.label_keys)
    ] == [("partial_match", ("no_match",), "merge")]


def test_a_label_no_gold_uses_may_go_without_a_mapping(pairs, policy, owner):
    draft = policy.versions.get(number=2)
    saved = save(draft, owner, labels=[label for label in draft.labels if label["key"] != "partial_match"])
    assert saved.revision == 2 and saved.label_mapping == {}


def test_a_first_version_has_nothing_to_map_from(owner):
    created = policy_services.policy_create(
        slug="first", name="First", task_description="?", owner=owner, labels=NEW_LABELS, rules=[{"text": "R"}]
    )
    draft = created.versions.get()
    with pytest.raises(ContentValidationError) as excinfo:
        save(draft, owner, mapping={"strong_match": ["great_match"]})
    assert errors_of(excinfo) == [(None, "A first version has no earlier labels to map from.")]


def test_only_policy_owners_save_a_mapping(pairs, policy, annotator, engineer):
    draft = policy.versions.get(number=2)
    for user in (annotator, engineer):
        with pytest.raises(PermissionDenied):
            save(draft, user, labels=NEW_LABELS, mapping=MAPPING)


def test_the_mapping_is_content_its_hash_changes_and_versions_without_one_keep_theirs(mapped_draft, policy, owner):
    v1 = policy.versions.get(number=1)
    plain = PolicyVersion(body=mapped_draft.body, labels=mapped_draft.labels, rules=mapped_draft.rules)

    assert mapped_draft.content_hash == mapped_draft.compute_content_hash() != plain.compute_content_hash()
    assert v1.content_hash == PolicyVersion(body=v1.body, labels=v1.labels, rules=v1.rules).compute_content_hash()
    assert "label_mapping" not in v1.canonical_content()
    # None keeps the mapping (an API client that does not know about it), {} clears it
    kept = save(mapped_draft, owner)
    assert kept.label_mapping == MAPPING and kept.content_hash == mapped_draft.content_hash


# --- the gold set through the mapping ------------------------------------------------------------------------------
def test_gold_under_the_draft_renames_and_lists_the_split_item(mapped_draft, owner):
    gold = draft_gold(draft=mapped_draft)

    by_member_job = {(g.pair.member.external_id, g.pair.job.external_id): g.pair_id for g in GoldLabel.objects.all()}
    assert gold.truth == {
        by_member_job[("m1", "j1")]: "great_match",
        by_member_job[("m1", "j2")]: "no_match",
        by_member_job[("m2", "j1")]: "no_match",
    }
    assert [(i.gold.label, i.choices, i.done) for i in gold.pending] == [
        ("partial_match", ["maybe_match", "stretch_match"], False)
    ]
    # the stored gold set is unchanged until publishing
    assert sorted(GoldLabel.objects.values_list("label", flat=True)) == sorted(GOLD.values())


def test_relabelling_a_split_item_takes_one_of_its_new_labels(mapped_draft, owner, annotator):
    split = pair(*SPLIT_PAIR)

    with pytest.raises(GoldError, match="partial_match splits into maybe_match, stretch_match; 'no_match' is not"):
        gold_relabel_set(user=owner, draft=mapped_draft, pair_id=split.pk, label="no_match")
    with pytest.raises(GoldError, match="is not a gold item of a label draft v2 splits"):
        gold_relabel_set(user=owner, draft=mapped_draft, pair_id=pair("m1", "j1").pk, label="great_match")
    with pytest.raises(PermissionDenied):
        gold_relabel_set(user=annotator, draft=mapped_draft, pair_id=split.pk, label="maybe_match")
    assert not GoldRelabel.objects.exists()

    gold_relabel_set(user=owner, draft=mapped_draft, pair_id=split.pk, label="stretch_match")
    relabel = gold_relabel_set(user=owner, draft=mapped_draft, pair_id=split.pk, label="maybe_match")

    assert (relabel.old_label, relabel.label, relabel.created_by) == ("partial_match", "maybe_match", owner)
    assert GoldRelabel.objects.count() == 1
    gold = draft_gold(draft=mapped_draft)
    assert gold.pending == [] and gold.truth[split.pk] == "maybe_match"


@pytest.fixture
def mapped_preview(mapped_draft, owner, openai_config, fake_openai):
    fake_openai.responder = teacher(published=PUBLISHED, draft=MAPPED_DRAFT)
    return finish(draft_preview_start(user=owner, draft=mapped_draft, config=openai_config()))


def test_the_preview_scores_the_draft_on_mapped_gold_and_leaves_split_items_out_on_both_sides(
    mapped_preview, mapped_draft, owner
):
    state = draft_preview_state(preview=mapped_preview, target_precision=0.95)

    # the rename is right, not a miss; the split item is scored by neither side until relabelled
    draft_acc, published_acc = state.draft_evaluation.accuracy, state.published_evaluation.accuracy
    assert (draft_acc.n, draft_acc.correct) == (3, 3)
    assert (published_acc.n, published_acc.correct) == (3, 2)  # the same pairs, under v1's own labels
    assert draft_acc.labels == ["great_match", "maybe_match", "stretch_match", "no_match"]
    assert [i.gold.pair_id for i in state.gold.pending] == [pair(*SPLIT_PAIR).pk]

    gold_relabel_set(user=owner, draft=mapped_draft, pair_id=pair(*SPLIT_PAIR).pk, label="maybe_match")

    state = draft_preview_state(preview=mapped_preview, target_precision=0.95)
    assert (state.draft_evaluation.accuracy.n, state.draft_evaluation.accuracy.correct) == (4, 4)
    assert (state.published_evaluation.accuracy.n, state.published_evaluation.accuracy.correct) == (4, 2)
    assert state.gold.pending == []

    # published since: gold holds the new keys, and the preview's figures stay what they were
    publish(mapped_draft, owner)
    state = draft_preview_state(preview=mapped_preview, target_precision=0.95)
    assert (state.draft_evaluation.accuracy.n, state.draft_evaluation.accuracy.correct) == (4, 4)
    assert (state.published_evaluation.accuracy.n, state.published_evaluation.accuracy.correct) == (4, 2)


def test_the_per_rule_drop_gate_compares_the_same_pairs(mapped_preview, mapped_draft, policy, owner):
    set_gates(policy, owner, min_gold_accuracy=0.9, max_rule_accuracy_drop=0.05)

    check = draft_gate_check(draft=mapped_draft)

    per_rule = check.figures["gold"]["per_rule"]
    assert per_rule["R1"] == {"draft": 1.0, "published": 0.5, "n_draft": 2, "n_published": 2}
    assert per_rule["R2"] == {"draft": 1.0, "published": 1.0, "n_draft": 1, "n_published": 1}
    assert "R3" not in per_rule  # only cited on the split item, which neither side scores yet
    results = {r.key: r.status for r in check.results}
    assert results == {"min_gold_accuracy": "passed", "max_rule_accuracy_drop": "passed", "gold_relabel": "failed"}


def test_a_mapping_change_makes_the_preview_stale(mapped_preview, mapped_draft, owner):
    save(mapped_draft, owner, mapping={**MAPPING, "partial_match": ["maybe_match", "stretch_match", "no_match"]})

    state = draft_preview_state(preview=mapped_preview, target_precision=0.95)
    assert state.stale.startswith("The draft changed since this preview")


# --- publishing --------------------------------------------------------------------------------------------------
def test_publishing_waits_for_split_gold_items_even_without_gates(mapped_draft, policy, owner):
    check = draft_gate_check(draft=mapped_draft)
    assert check.configured and not check.passed and check.thresholds is None
    assert check.figures["label_mapping"]["needs_relabel"] == 1

    with pytest.raises(GatesFailed, match="Gold relabelled after split: 1 of 1 gold item of split labels still need"):
        publish(mapped_draft, owner)
    with pytest.raises(OverrideReasonMissing):
        publish(mapped_draft, owner, override_reason="  ")

    mapped_draft.refresh_from_db()
    assert mapped_draft.is_draft and not GateRecord.objects.filter(version=mapped_draft).exists()
    assert sorted(GoldLabel.objects.values_list("label", flat=True)) == sorted(GOLD.values())


def test_after_relabelling_it_publishes_and_gold_follows_the_mapping_with_events(mapped_draft, policy, owner):
    v1 = policy.versions.get(number=1)
    v1_before = (v1.labels, v1.rules, v1.content_hash, v1.label_mapping)
    old_events = list(GoldLabelEvent.objects.values())
    gold_relabel_set(user=owner, draft=mapped_draft, pair_id=pair(*SPLIT_PAIR).pk, label="stretch_match")

    version = publish(mapped_draft, owner)

    gold = {(g.pair.member.external_id, g.pair.job.external_id): g.label for g in GoldLabel.objects.all()}
    assert gold == {("m1", "j1"): "great_match", ("m1", "j2"): "no_match", ("m2", "j1"): "no_match",
                    ("m2", "j2"): "stretch_match"}  # fmt: skip
    new_events = GoldLabelEvent.objects.exclude(pk__in=[e["id"] for e in old_events])
    assert sorted((e.action, e.label, e.new_label, e.reason, e.user) for e in new_events) == [
        ("replaced", "partial_match", "stretch_match", "Label mapping of v2: partial_match → stretch_match.", owner),
        ("replaced", "strong_match", "great_match", "Label mapping of v2: strong_match → great_match.", owner),
    ]
    # earlier events, v1 and the relabel record are as they were
    assert list(GoldLabelEvent.objects.filter(pk__in=[e["id"] for e in old_events]).values()) == old_events
    v1.refresh_from_db()
    assert (v1.labels, v1.rules, v1.content_hash, v1.label_mapping) == v1_before
    assert GoldRelabel.objects.get().version == version
    record = GateRecord.objects.get(version=version)
    assert (record.gates_configured, record.passed, record.overridden) == (True, True, False)
    assert [(r["key"], r["status"]) for r in record.results] == [("gold_relabel", "passed")]
    assert record.figures["label_mapping"]["split_gold"] == 1
    # the published mapping never changes, and the gold set is no longer read through it
    version.label_mapping = {}
    with pytest.raises(Exception, match="never changes"):
        version.save()
    assert draft_gold(draft=PolicyVersion.objects.get(pk=version.pk)).mapped is False


def test_an_override_with_a_reason_publishes_and_takes_the_unrelabelled_item_out_of_gold(mapped_draft, policy, owner):
    version = publish(mapped_draft, owner, override_reason="Relabel after the offsite; scores of v2 skip it.")

    record = GateRecord.objects.get(version=version)
    assert (record.passed, record.overridden_by, record.override_reason) == (
        False, owner, "Relabel after the offsite; scores of v2 skip it.",
    )  # fmt: skip
    assert [(r["key"], r["status"], r["blocking"]) for r in record.results] == [("gold_relabel", "failed", True)]
    assert not GoldLabel.objects.filter(pair=pair(*SPLIT_PAIR)).exists()
    removed = GoldLabelEvent.objects.get(action="removed")
    assert removed.label == "partial_match" and "override: Relabel after the offsite" in removed.reason


def test_runs_and_approvals_of_the_old_version_are_left_as_they_were(mapped_preview, mapped_draft, policy, owner):
    old = list(Candidate.objects.filter(run__policy_version__number=1).values("id", "label", "approved_label"))
    gold_relabel_set(user=owner, draft=mapped_draft, pair_id=pair(*SPLIT_PAIR).pk, label="maybe_match")

    publish(mapped_draft, owner)

    assert (
        old
        and list(Candidate.objects.filter(run__policy_version__number=1).values("id", "label", "approved_label")) == old
    )


# --- older versions against the rewritten gold set -----------------------------------------------------------------
def test_an_older_versions_score_on_gold_reads_its_labels_through_the_later_mapping(
    mapped_preview, mapped_draft, policy, owner
):
    from labeling.selectors import run_gold_score, runs_on_gold
    from policyhub.selectors import forward_translation

    v1_run = mapped_preview.published_run
    before = run_gold_score(run=v1_run, target_precision=0.95).evaluation.accuracy
    listed_before = {r.run.pk: (r.n, r.correct) for r in runs_on_gold(policy=policy)}
    gold_relabel_set(user=owner, draft=mapped_draft, pair_id=pair(*SPLIT_PAIR).pk, label="maybe_match")
    publish(mapped_draft, owner)

    v1 = policy.versions.get(number=1)
    assert forward_translation(version=v1) == {
        "strong_match": ["great_match"], "partial_match": ["maybe_match", "stretch_match"], "no_match": ["no_match"],
    }  # fmt: skip
    after = run_gold_score(run=v1_run, target_precision=0.95).evaluation.accuracy
    # v1 said strong_match where gold now says great_match: still right, as it was before the rename
    assert (before.n, before.correct) == (after.n, after.correct) == (4, 2)
    assert after.labels[:4] == ["great_match", "maybe_match", "stretch_match", "no_match"]
    assert {r.run.pk: (r.n, r.correct) for r in runs_on_gold(policy=policy)}[v1_run.pk] == listed_before[v1_run.pk]


def test_an_older_versions_approved_item_becomes_gold_in_the_new_keys_unless_its_label_was_split(
    review_items, annotator, owner, policy
):
    from labeling.services import gold_mark, gold_mark_run

    from .gold_helpers import approve_all

    run = review_items(3)
    approve_all(run, annotator, {"r0": "strong_match", "r1": "partial_match", "r2": "no_match"})
    publish(save(policy.versions.get(number=2), owner, labels=NEW_LABELS, mapping=MAPPING), owner)
    item = {c.pair.member.external_id: c for c in Candidate.objects.filter(run=run).select_related("pair__member")}

    assert gold_mark(user=owner, candidate_id=item["r0"].pk).gold.label == "great_match"
    with pytest.raises(GoldError, match="a later version splits that label into maybe_match, stretch_match"):
        gold_mark(user=owner, candidate_id=item["r1"].pk)
    result = gold_mark_run(user=owner, run=run)

    assert (result.added, result.unchanged, result.split) == (1, 1, 1)
    assert "1 approved as a label a later version splits (skipped)" in result.summary
    assert sorted(GoldLabel.objects.values_list("label", flat=True)) == ["great_match", "no_match"]


def test_a_new_run_of_an_older_version_is_not_flagged_against_renamed_gold(
    mapped_draft, policy, owner, openai_config, fake_openai, process_run
):
    from labeling.services import labeling_run_create

    gold_relabel_set(user=owner, draft=mapped_draft, pair_id=pair(*SPLIT_PAIR).pk, label="maybe_match")
    publish(mapped_draft, owner)
    fake_openai.responder = teacher(published=PUBLISHED, draft=PUBLISHED)

    run = process_run(
        labeling_run_create(version=policy.versions.get(number=1), config=openai_config(), selection={"all": True})
    )

    flagged = Candidate.objects.filter(run=run, reason_gold_conflict=True).select_related("pair__member", "pair__job")
    # m1×j1 said strong_match, gold now great_match: the same label; m1×j2 and m2×j2 really disagree with gold
    assert {(c.pair.member.external_id, c.pair.job.external_id) for c in flagged} == {("m1", "j2"), ("m2", "j2")}


def test_publishing_refuses_a_removed_label_that_gold_started_using_after_the_save(pairs, policy, owner):
    draft = save(
        policy.versions.get(number=2), owner, labels=[label for label in LABELS if label["key"] != "partial_match"]
    )
    make_gold(policy, GOLD, user=owner)  # m2×j2 is gold as partial_match now

    with pytest.raises(ContentValidationError) as excinfo:
        publish(draft, owner)

    assert errors_of(excinfo) == [
        ("partial_match", "partial_match is removed but gold labels use it: map it to the label(s) it becomes.")
    ]
    assert policy.versions.get(number=2).is_draft
