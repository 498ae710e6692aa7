"""Marking human-approved items as gold (one, a whole run, explicit replacement) and removing gold labels."""

import pytest
from django.core.exceptions import PermissionDenied

from labeling.models import Candidate, GoldLabel, GoldLabelEvent, LabelingRun, TeacherConfig
from labeling.services import (
    GoldConflict,
    GoldError,
    gold_mark,
    gold_mark_run,
    gold_remove,
    labeling_run_create,
    review_claim_next,
    review_submit,
)
from policyhub import roles

from .gold_helpers import adjudicate, approve_all, make_gold

LABELS = {"r0": "strong_match", "r1": "partial_match", "r2": "no_match"}


@pytest.fixture
def second_annotator(make_user):
    return make_user("bea", roles.ANNOTATOR)


def rerun_for_review(published, reviewers=1) -> LabelingRun:
    """Another labeling run over every pair, its items waiting for review (as the review_items fixture does)."""
    config = TeacherConfig.objects.get(name="review-fixture")
    run = labeling_run_create(version=published, config=config, selection={"all": True}, reviewers_per_item=reviewers)
    Candidate.objects.filter(run=run).update(
        status="labeled", label="strong_match", routing="needs_review", reason_low_confidence=True,
        review_state="pending", reviews_needed=reviewers, confidence=0.5,
    )  # fmt: skip
    return run


def item(run, member) -> Candidate:
    return Candidate.objects.select_related("pair").get(run=run, pair__member__external_id=member)


def test_a_reviewed_item_becomes_gold_with_its_approved_label_who_and_source(review_items, annotator, owner, policy):
    run = review_items(3)
    approve_all(run, annotator, LABELS)
    candidate = item(run, "r1")

    result = gold_mark(user=owner, candidate_id=candidate.pk)

    assert result.outcome == "added"
    gold = GoldLabel.objects.get()
    assert (gold.policy, gold.pair_id, gold.label) == (policy, candidate.pair_id, "partial_match")
    assert (gold.created_by, gold.source_candidate) == (owner, candidate)
    event = GoldLabelEvent.objects.get()
    assert (event.action, event.label, event.user, event.source_candidate) == (
        "added",
        "partial_match",
        owner,
        candidate,
    )


def test_an_adjudicated_item_becomes_gold_with_the_final_label(review_items, annotator, second_annotator, owner):
    run = review_items(1, reviewers=2)
    candidate = adjudicate(item(run, "r0"), owner, annotator, second_annotator, final="no_match")

    gold_mark(user=owner, candidate_id=candidate.pk)

    assert GoldLabel.objects.get().label == "no_match"


def test_items_not_approved_by_humans_are_refused_and_nothing_is_stored(
    review_items, pairs, published, owner, process_run
):
    waiting = review_items(1)
    heuristic, _ = TeacherConfig.objects.get_or_create(name="baseline", defaults={"provider": "heuristic"})
    auto = process_run(labeling_run_create(version=published, config=heuristic, selection={"all": True}))
    teacher_approved = Candidate.objects.filter(run=auto, approved_by="teacher").first()
    assert teacher_approved is not None

    with pytest.raises(GoldError, match="not human-approved yet \\(Waiting for reviews\\)"):
        gold_mark(user=owner, candidate_id=item(waiting, "r0").pk)
    with pytest.raises(GoldError, match="not human-approved yet"):
        gold_mark(user=owner, candidate_id=teacher_approved.pk)
    with pytest.raises(GoldError, match="no item #999999"):
        gold_mark(user=owner, candidate_id=999999)
    assert not GoldLabel.objects.exists() and not GoldLabelEvent.objects.exists()


def test_only_policy_owners_mark_or_remove_gold(review_items, annotator, engineer, owner, policy):
    run = review_items(1)
    approve_all(run, annotator, LABELS)
    for user in (annotator, engineer):
        with pytest.raises(PermissionDenied):
            gold_mark(user=user, candidate_id=item(run, "r0").pk)
        with pytest.raises(PermissionDenied):
            gold_mark_run(user=user, run=run)
    gold_mark(user=owner, candidate_id=item(run, "r0").pk)
    with pytest.raises(PermissionDenied):
        gold_remove(user=engineer, gold_id=GoldLabel.objects.get().pk, reason="No.")
    assert GoldLabel.objects.count() == 1


def test_a_pair_gold_with_a_different_label_is_refused_until_replaced_explicitly(
    review_items, published, annotator, owner
):
    first = review_items(1)
    approve_all(first, annotator, {"r0": "strong_match"})
    gold_mark(user=owner, candidate_id=item(first, "r0").pk)
    second = rerun_for_review(published)
    approve_all(second, annotator, {"r0": "no_match", "r1": "no_match"})
    newer = item(second, "r0")

    assert gold_mark(user=owner, candidate_id=item(first, "r0").pk).outcome == "unchanged"
    with pytest.raises(GoldConflict) as refused:
        gold_mark(user=owner, candidate_id=newer.pk)
    assert (refused.value.gold.label, refused.value.candidate.approved_label) == ("strong_match", "no_match")
    assert "already gold as strong_match" in refused.value.messages[0]
    assert GoldLabel.objects.get().label == "strong_match"

    replaced = gold_mark(user=owner, candidate_id=newer.pk, replace=True)

    assert replaced.outcome == "replaced"
    gold = GoldLabel.objects.get()
    assert (gold.label, gold.source_candidate) == ("no_match", newer)
    assert list(GoldLabelEvent.objects.order_by("id").values_list("action", "label", "new_label")) == [
        ("added", "strong_match", ""),
        ("replaced", "strong_match", "no_match"),
    ]


def test_marking_a_whole_run_is_idempotent_and_reports_conflicts_and_waiting_items(
    review_items, published, annotator, owner, policy
):
    run = review_items(4)
    for _ in range(3):  # r0..r2 are reviewed; r3 stays in the queue
        claimed = review_claim_next(user=annotator, run_id=run.pk)
        review_submit(user=annotator, candidate_id=claimed.pk, label=LABELS[claimed.pair.member.external_id])
    make_gold(policy, {("r2", "rj"): "partial_match"}, user=owner)  # gold already, with another label

    first = gold_mark_run(user=owner, run=run)

    assert (first.added, first.unchanged, first.waiting) == (2, 0, 1)
    assert [(c.pair.member.external_id, g.label) for c, g in first.conflicts] == [("r2", "partial_match")]
    assert dict(GoldLabel.objects.values_list("pair__member__external_id", "label")) == {
        "r0": "strong_match", "r1": "partial_match", "r2": "partial_match",
    }  # fmt: skip
    assert GoldLabelEvent.objects.filter(action="added").count() == 2

    again = gold_mark_run(user=owner, run=run)

    assert (again.added, again.unchanged, len(again.conflicts)) == (0, 2, 1)
    assert GoldLabel.objects.count() == 3 and GoldLabelEvent.objects.count() == 2
    assert again.summary == (
        "0 added to the gold set; 2 already gold with the same label; 1 refused: already gold with a different "
        "label; 1 still waiting for a human decision (skipped)."
    )


def test_removing_a_gold_label_needs_a_reason_and_is_recorded(review_items, annotator, owner):
    run = review_items(1)
    approve_all(run, annotator, LABELS)
    gold = gold_mark(user=owner, candidate_id=item(run, "r0").pk).gold

    with pytest.raises(GoldError, match="Say why"):
        gold_remove(user=owner, gold_id=gold.pk, reason="  ")
    assert GoldLabel.objects.exists()

    event = gold_remove(user=owner, gold_id=gold.pk, reason="Member profile was wrong.")

    assert not GoldLabel.objects.exists()
    assert (event.action, event.label, event.user, event.reason) == (
        "removed", "strong_match", owner, "Member profile was wrong.",
    )  # fmt: skip
    assert event.source_candidate_id == item(run, "r0").pk
    with pytest.raises(GoldError, match="no longer exists"):
        gold_remove(user=owner, gold_id=gold.pk, reason="Again.")
