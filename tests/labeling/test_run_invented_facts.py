"""A teacher that invents facts (a degree, an employer, years, a licence, a tool, a city) in some answers,
reached through the real openai client: every such answer fails the claim grounding check with the invented
claim named, its candidate goes to review and stays out of a default export; the clean answers pass."""

from exports import services as exports
from labeling.models import Candidate, TeacherSample
from labeling.services import labeling_run_create
from tests.fakes.openai_server import InventingResponder

from .conftest import answer


def test_answers_that_invent_facts_are_flagged_routed_to_review_and_not_exported(
    pairs, published, openai_config, fake_openai, process_run, engineer, settings, tmp_path
):
    settings.EXPORTS_ROOT = tmp_path / "exports"
    inventing = InventingResponder(answer("strong_match", rationale="The profile fits the posting."), fraction=0.15)
    fake_openai.responder = inventing
    run = labeling_run_create(version=published, config=openai_config(samples_per_pair=3), selection={"all": True})
    run = process_run(run)
    invented: dict[int, set[str]] = {}
    for sample in TeacherSample.objects.filter(run=run):
        if sample.rationale in inventing.invented:
            invented.setdefault(sample.pair_id, set()).add(inventing.invented[sample.rationale])
    assert 0 < len(invented) < len(pairs)  # the fake decides by hash: the same pairs invent every time

    for candidate in Candidate.objects.filter(run=run):
        facts = candidate.trust["facts_grounded"]
        if candidate.pair_id in invented:
            assert not facts["ok"] and facts["detail"].startswith("not in this member or job: ")
            assert all(claim in facts["detail"] for claim in invented[candidate.pair_id]), facts["detail"]
            assert (candidate.routing, candidate.reasons) == ("needs_review", ["trust_check_failed"])
            assert (candidate.review_state, candidate.approved_label, candidate.approved_by) == ("pending", "", "")
        else:
            assert facts == {"ok": True, "detail": ""} and candidate.trust_ok
            assert (candidate.routing, candidate.approved_label) == ("auto_accepted", "strong_match")

    export, _ = exports.export_create(user=engineer, version=published, runs=[run])
    export = exports.export_build(export_id=export.pk)
    assert export.status == "ready", export.error
    exported = {row["pair_id"] for row in _rows(export)}
    assert exported == {p.pk for p in pairs} - set(invented)


def _rows(export):
    import json

    path = exports.export_dir(export) / "labels.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_rationale_that_only_repeats_the_pair_and_the_policy_is_not_flagged(
    pairs, published, openai_config, fake_openai, process_run
):
    def respond(request, call_number):
        user = request["messages"][1]["content"]
        rationale = (
            "R1: Python and SQL are required and present; R2 allows at most one level, senior for a senior role; "
            "both in Berlin, so strong_match."
            if "Data engineer" in user and "Senior data engineer" in user
            else "A must-have is missing (R1), so no_match under the policy."
        )
        return {"label": "strong_match", "rationale": rationale, "cited_rules": ["R1"]}

    fake_openai.responder = respond
    run = process_run(labeling_run_create(version=published, config=openai_config(), selection={"all": True}))
    checks = [c.trust["facts_grounded"] for c in Candidate.objects.filter(run=run)]
    assert checks == [{"ok": True, "detail": ""}] * len(pairs)
