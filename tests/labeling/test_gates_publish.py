"""Publishing through the quality gates (``policyhub.services.policy_version_publish``): the gates read the draft's
latest fresh preview on the gold set (the fake OpenAI teacher labels it), a failing gate blocks with a clear
message unless a policy owner overrides it with a reason, a stale or missing preview asks for a preview, and the
version keeps an immutable gate record. Red-team figures arrive through ``labeling.selectors.gates.red_team_figures``.
"""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import GateRecord, GateRecordImmutable, LabelingRun, QualityGates
from labeling.selectors import gates as gate_selectors
from labeling.selectors.trust_rates import run_trust_rates
from labeling.services import (
    GatesFailed,
    OverrideReasonMissing,
    PreviewNeeded,
    draft_preview_start,
    gates_for_draft,
    quality_gates_update,
)
from policyhub import services as policy_services

from .gates_helpers import edit_draft, finish, set_gates
from .gold_helpers import DRAFT_MARK


def publish(draft, owner, **kwargs):
    return policy_services.policy_version_publish(version=draft, user=owner, revision=draft.revision, **kwargs)


def test_without_gates_publishing_is_as_before_and_the_record_says_no_gates(gated_draft, owner):
    version = publish(gated_draft, owner)

    record = GateRecord.objects.get(version=version)
    assert version.status == "published"
    assert (record.gates_configured, record.passed, record.results, record.preview) == (False, True, [], None)
    assert record.published_by == owner and not record.overridden


def test_gates_with_every_threshold_off_count_as_no_gates(gated_draft, policy, owner):
    set_gates(policy, owner)  # a row, but nothing on
    assert not QualityGates.objects.get(policy=policy).configured

    record = publish(gated_draft, owner).gate_record
    assert (record.gates_configured, record.passed) == (False, True)


def test_a_draft_whose_preview_passes_every_gate_publishes_with_its_figures_on_record(
    previewed, gated_draft, policy, owner
):
    preview = previewed()  # 3 of 4 right; R1 0.5 → 1.0, R3 0.0 → 0.5
    set_gates(policy, owner, min_gold_accuracy=0.7, max_rule_accuracy_drop=0.05, max_flip_rate=0.05)

    version = publish(gated_draft, owner)

    record = version.gate_record
    assert (record.gates_configured, record.passed, record.preview_id) == (True, True, preview.pk)
    assert [(r["key"], r["status"], r["figure"]) for r in record.results] == [
        ("min_gold_accuracy", "passed", 0.75),
        ("max_rule_accuracy_drop", "passed", -0.5),
        ("max_flip_rate", "not_measured", None),  # no red-team run, and none required
    ]
    assert record.thresholds["min_gold_accuracy"] == 0.7 and record.thresholds["require_red_team_run"] is False
    gold = record.figures["gold"]
    assert (gold["accuracy"], gold["n"], gold["published_version"], gold["published_accuracy"]) == (0.75, 4, 1, 0.5)
    assert gold["per_rule"]["R1"] == {"draft": 1.0, "published": 0.5, "n_draft": 2, "n_published": 2}
    assert record.figures["red_team"] is None and record.figures["red_team_note"] == "no red-team run of this draft"


def test_a_failing_gate_blocks_publishing_with_a_clear_message_and_changes_nothing(
    previewed, gated_draft, policy, owner
):
    previewed(bad=True)  # strong_match everywhere: 1 of 4 right, R1 drops from 0.5 to 0.25
    set_gates(policy, owner, min_gold_accuracy=0.8, max_rule_accuracy_drop=0.05)

    with pytest.raises(GatesFailed) as refused:
        publish(gated_draft, owner)

    message = refused.value.messages[0]
    assert message.startswith(
        "Cannot publish v2: 2 quality gates block it — Gold accuracy: 0.250 (4 gold pairs) not ≥ 0.800"
    )
    assert "R1: 0.500 → 0.250 (drop 0.250)" in message
    assert "A policy owner may override with a written reason" in message
    assert [r.key for r in refused.value.check.blocking] == ["min_gold_accuracy", "max_rule_accuracy_drop"]
    gated_draft.refresh_from_db()
    assert gated_draft.status == "draft" and not GateRecord.objects.filter(version=gated_draft).exists()


def test_an_owner_overrides_a_failing_gate_with_a_reason_that_is_kept(previewed, gated_draft, policy, owner):
    preview = previewed(bad=True)
    set_gates(policy, owner, min_gold_accuracy=0.8)

    version = publish(gated_draft, owner, override_reason="  Gold set is being relabelled; approved by legal.\n")

    record = GateRecord.objects.get(version=version)
    assert version.status == "published"
    assert (record.passed, record.overridden_by, record.preview_id) == (False, owner, preview.pk)
    assert record.override_reason == "Gold set is being relabelled; approved by legal."
    assert record.overridden_at == record.created_at == version.published_at
    assert [(r["key"], r["status"], r["blocking"]) for r in record.results] == [("min_gold_accuracy", "failed", True)]


@pytest.mark.parametrize("reason", ["", "   ", "\n\t "])
def test_an_override_without_a_reason_is_refused(previewed, gated_draft, policy, owner, reason):
    previewed(bad=True)
    set_gates(policy, owner, min_gold_accuracy=0.8)

    with pytest.raises(OverrideReasonMissing, match="an override needs a reason"):
        publish(gated_draft, owner, override_reason=reason)

    gated_draft.refresh_from_db()
    assert gated_draft.status == "draft" and not GateRecord.objects.filter(version=gated_draft).exists()


def test_a_reason_given_while_every_gate_passes_is_not_recorded_as_an_override(previewed, gated_draft, policy, owner):
    previewed()
    set_gates(policy, owner, min_gold_accuracy=0.7)

    record = publish(gated_draft, owner, override_reason="just in case").gate_record
    assert (record.passed, record.overridden_by, record.override_reason) == (True, None, "")


def test_a_stale_preview_asks_for_a_new_preview_even_with_an_override(previewed, gated_draft, policy, owner):
    preview = previewed()
    set_gates(policy, owner, min_gold_accuracy=0.7)
    draft = edit_draft(policy, owner, "# Match policy\n\nRewritten after the preview.\n")  # revision 3

    for reason in (None, "ship it"):
        with pytest.raises(PreviewNeeded) as refused:
            publish(draft, owner, override_reason=reason)
        assert refused.value.messages[0] == (
            f"Cannot publish v2 yet: The draft changed since its latest preview (#{preview.pk}, revision 2; the "
            "draft is at revision 3): preview it again so the gates see the current content."
        )
    assert policy.versions.get(number=2).status == "draft"


def test_a_draft_never_previewed_asks_for_a_preview(gated_draft, policy, owner):
    set_gates(policy, owner, min_gold_accuracy=0.7)

    with pytest.raises(PreviewNeeded, match="Draft v2 has not been previewed on the gold set: preview it"):
        publish(gated_draft, owner)


def test_a_preview_still_running_is_waited_for(gated_draft, policy, owner, openai_config, fake_openai):
    preview = draft_preview_start(user=owner, draft=gated_draft, config=openai_config())  # no chunk processed
    set_gates(policy, owner, min_gold_accuracy=0.7)

    with pytest.raises(PreviewNeeded, match=f"Preview #{preview.pk} is still running: wait for it to finish"):
        publish(gated_draft, owner)


def test_the_latest_fresh_preview_is_the_one_gated_on(previewed, gated_draft, policy, owner):
    previewed()  # good
    bad = previewed(bad=True, model="fake-teacher-2")  # the later one counts
    set_gates(policy, owner, min_gold_accuracy=0.7)

    check = gates_for_draft(policy)
    assert check.preview == bad and not check.passed
    assert check.summary == "Gold accuracy: 0.250 (4 gold pairs) not ≥ 0.700"


def test_a_draft_whose_answers_invent_facts_fails_the_hallucination_gate(
    gated_draft, policy, owner, openai_config, fake_openai
):
    def respond(request, call_number):  # the draft's teacher credits every member with an MBA from Harvard
        invents = DRAFT_MARK in request["messages"][0]["content"]
        rationale = "Holds an MBA from Harvard and 10 years at Google." if invents else "Skills match the posting."
        return {"label": "strong_match", "rationale": rationale, "cited_rules": ["R1"]}

    fake_openai.responder = respond
    preview = finish(draft_preview_start(user=owner, draft=gated_draft, config=openai_config()))
    set_gates(policy, owner, max_hallucination_rate=0.05)

    gold, red_team = gates_for_draft(policy).results

    rate = run_trust_rates(run=LabelingRun.objects.get(pk=preview.draft_run_id)).hallucination
    assert (rate.count, rate.total) == (4, 4)
    assert (gold.key, gold.status, gold.figure, gold.blocking) == ("max_hallucination_rate:gold", "failed", 1.0, True)
    assert (red_team.key, red_team.status) == ("max_hallucination_rate:red_team", "not_measured")
    with pytest.raises(GatesFailed, match="Hallucination rate \\(gold\\): 1.000 not ≤ 0.050"):
        publish(gated_draft, owner)


# --- red-team figures through the one plug -------------------------------------------------------------------
RED_TEAM = {
    "run": 41,
    "attack_success_rate": {"injection": 0.25, "protected_attribute": 0.0},
    "flip_rate": 0.0,
    "flip_rate_by_attribute": {"age": 0.0},
    "hallucination_rate": None,
    "variants": 8,
}


def test_red_team_figures_from_the_provider_gate_publishing(previewed, gated_draft, policy, owner, monkeypatch):
    previewed()
    set_gates(policy, owner, min_gold_accuracy=0.7, max_asr_injection=0.1, max_flip_rate=0.05)
    monkeypatch.setattr(gate_selectors, "red_team_figures", lambda draft, config=None: (RED_TEAM, ""))

    with pytest.raises(GatesFailed, match="Attack success rate: prompt injection: 0.250 not ≤ 0.100"):
        publish(gated_draft, owner)
    record = publish(gated_draft, owner, override_reason="Injection fix ships in v3.").gate_record

    assert record.figures["red_team"] == RED_TEAM
    assert {r["key"]: r["status"] for r in record.results} == {
        "min_gold_accuracy": "passed", "max_asr:injection": "failed", "max_flip_rate": "passed",
    }  # fmt: skip


def test_until_red_team_runs_exist_their_gates_are_not_measured_and_block_only_when_required(
    previewed, gated_draft, policy, owner
):
    previewed()
    assert gate_selectors.red_team_figures(draft=gated_draft) == (
        None,
        "no red-team run of this draft",
    )
    set_gates(policy, owner, max_asr_injection=0.1, require_red_team_run=True)

    with pytest.raises(GatesFailed, match="no red-team run of this draft \\(a red-team run is required\\)"):
        publish(gated_draft, owner)

    quality_gates_update(policy=policy, user=owner, require_red_team_run=False)
    record = publish(gated_draft, owner).gate_record
    assert record.passed and record.results[0]["status"] == "not_measured"


def test_only_red_team_gates_need_no_gold_preview(gated_draft, policy, owner, monkeypatch):
    set_gates(policy, owner, max_flip_rate=0.05)
    monkeypatch.setattr(gate_selectors, "red_team_figures", lambda draft, config=None: ({**RED_TEAM}, ""))

    record = publish(gated_draft, owner).gate_record
    assert (record.passed, record.preview, record.figures["gold"]) == (True, None, None)


# --- the settings and the record's invariants ----------------------------------------------------------------
def test_new_gates_start_from_the_defaults_and_only_owners_set_them(policy, owner, annotator, engineer):
    gates = quality_gates_update(policy=policy, user=owner, max_flip_rate=0.1)
    assert (gates.min_gold_accuracy, gates.max_rule_accuracy_drop, gates.max_flip_rate) == (0.8, 0.05, 0.1)
    assert gates.updated_by == owner and not gates.require_red_team_run

    for user in (annotator, engineer):
        with pytest.raises(PermissionDenied, match="Only policy owners can set quality gates"):
            quality_gates_update(policy=policy, user=user, max_flip_rate=0.5)
    assert QualityGates.objects.get(policy=policy).max_flip_rate == 0.1


@pytest.mark.parametrize("value", [-0.01, 1.01, 80])
def test_thresholds_outside_0_1_are_refused_by_the_service_and_the_database(policy, owner, value):
    with pytest.raises(ValidationError) as refused:
        quality_gates_update(policy=policy, user=owner, min_gold_accuracy=value)
    assert "min_gold_accuracy" in refused.value.message_dict
    assert not QualityGates.objects.exists()

    with pytest.raises(IntegrityError, match="qualitygates_max_flip_rate_0_1"), transaction.atomic():
        QualityGates.objects.create(policy=policy, max_flip_rate=value)


def test_a_gate_record_never_changes_nor_goes_away(gated_draft, owner):
    record = publish(gated_draft, owner).gate_record

    record.override_reason = "rewritten later"
    with pytest.raises(GateRecordImmutable):
        record.save()
    with pytest.raises(GateRecordImmutable):
        record.delete()
    with pytest.raises(IntegrityError, match="never changes"), transaction.atomic():
        GateRecord.objects.filter(pk=record.pk).update(passed=False)
    with pytest.raises(IntegrityError, match="never changes"), transaction.atomic():
        GateRecord.objects.filter(pk=record.pk).delete()
    assert GateRecord.objects.get(pk=record.pk).override_reason == ""


def test_the_database_refuses_a_failed_record_without_an_override_or_a_blank_reason(gated_draft, owner):
    version = publish(gated_draft, owner)
    v1 = version.policy.versions.get(number=1)  # has its record already: the check constraints are tested first
    base = {"gates_configured": True, "published_by": owner, "results": [{"key": "x"}]}
    with pytest.raises(IntegrityError, match="gaterecord_failed_gates_were_overridden"), transaction.atomic():
        GateRecord.objects.bulk_create([GateRecord(version=v1, passed=False, **base)])

    blank = {"overridden_by": owner, "overridden_at": timezone.now(), "override_reason": "  "}
    with pytest.raises(IntegrityError, match="gaterecord_override_has_who_when_why"), transaction.atomic():
        GateRecord.objects.bulk_create([GateRecord(version=v1, passed=False, **base, **blank)])
