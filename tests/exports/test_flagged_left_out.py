# ruff: noqa: F811 - fixtures imported from tests.labeling are parameters of the tests below
"""Nothing flagged is exported as if it were fine: a candidate that failed a trust check (or whose pair holds text
aimed at a model) is never auto-accepted, the database refuses it; exports include it only once a human approved
it, unless asked to; the manifest's ``left_out`` counts are what the built files actually left out, and the
manifest and the dataset card carry the runs' trust rates."""

import json

import pytest
from django.db import IntegrityError, transaction

from exports import services as exports
from labeling.models import Candidate, flagged_q
from labeling.selectors.trust_rates import run_trust_rates
from labeling.services import labeling_run_create, review_claim_next, review_submit
from policyhub import roles
from tests.labeling.conftest import (  # noqa: F401 - fixtures
    do_import,
    fake_openai,
    make_config,
    members_and_jobs,
    openai_config,
)
from tests.labeling.trust_teacher import HONEST, Misbehaving, trust_pairs  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("trust_pairs")


@pytest.fixture
def flagged_run(published, openai_config, fake_openai, process_run, settings, tmp_path):
    settings.EXPORTS_ROOT = tmp_path / "exports"
    fake_openai.responder = Misbehaving()
    return process_run(labeling_run_create(version=published, config=openai_config(), selection={"all": True}))


def _build(engineer, version, runs, **filters):
    export, _ = exports.export_create(user=engineer, version=version, runs=runs, filters=filters)
    export = exports.export_build(export_id=export.pk)
    assert export.status == "ready", export.error
    folder = exports.export_dir(export)
    rows = [json.loads(line) for line in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    return export.manifest, rows, (folder / "README.md").read_text(encoding="utf-8")


def _why_left_out(runs, rows) -> dict[str, int]:
    """What the files left out, read from the candidates the rows do not hold, by the first reason that applies."""
    exported = {(row["run_id"], row["pair_id"]) for row in rows}
    counts: dict[str, int] = {}
    for c in Candidate.objects.filter(run__in=runs):
        if (c.run_id, c.pair_id) in exported:
            continue
        human = c.is_human_approved
        if c.status != "labeled":
            reason = "not_labeled"
        elif not human and c.trust_ok is False:
            reason = "trust_check_failed"
        elif not human and c.reason_suspected_injection:
            reason = "suspected_injection"
        elif not c.approved_label:
            reason = "pending_review"
        else:
            reason = "duplicate_pair"  # approved, but the pair came from another run
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def _nonzero(left_out: dict) -> dict:
    return {reason: n for reason, n in left_out.items() if n and reason != "total"}


def test_a_flagged_candidate_is_never_auto_accepted_and_the_database_refuses_one(flagged_run):
    flagged = Candidate.objects.filter(run=flagged_run).filter(flagged_q())
    assert flagged.count() >= 7  # 6 pairs with planted text, and at least one invented or rude answer
    assert not flagged.filter(routing="auto_accepted").exists() and not flagged.filter(approved_by="teacher").exists()
    assert set(flagged.values_list("review_state", flat=True)) == {"pending"}

    victim = flagged.first()
    victim.routing = "auto_accepted"
    victim.approve(victim.label, by="teacher")
    with pytest.raises(IntegrityError, match="candidate_flagged_never_auto_accepted"), transaction.atomic():
        victim.save()
    clean = Candidate.objects.filter(run=flagged_run, routing="auto_accepted").first()
    assert clean is not None and clean.approved_by == "teacher"
    with pytest.raises(IntegrityError, match="candidate_flagged_never_auto_accepted"), transaction.atomic():
        Candidate.objects.filter(pk=clean.pk).update(trust_ok=False)  # failing a check without leaving auto-accept
    with pytest.raises(IntegrityError, match="candidate_flagged_never_auto_accepted"), transaction.atomic():
        Candidate.objects.filter(pk=clean.pk).update(reason_suspected_injection=True)


def test_flagged_items_are_left_out_until_a_human_approves_them_and_the_manifest_counts_them(
    flagged_run, published, engineer, make_user
):
    flagged = set(Candidate.objects.filter(run=flagged_run).filter(flagged_q()).values_list("pair_id", flat=True))
    manifest, rows, card = _build(engineer, published, [flagged_run])
    assert {row["pair_id"] for row in rows} == set(
        Candidate.objects.filter(run=flagged_run).values_list("pair_id", flat=True)
    ) - flagged
    assert all(row["approved_by"] == "teacher" for row in rows)
    left_out = manifest["left_out"]
    assert _nonzero(left_out) == _why_left_out([flagged_run], rows)
    assert left_out["total"] == len(flagged) and manifest["rows"] + left_out["total"] == 10
    assert left_out["trust_check_failed"] > 0 and left_out["suspected_injection"] > 0
    assert f"Left out: {len(flagged)} candidate(s) of the runs above" in card

    annotator = make_user("ann", roles.ANNOTATOR)
    item = review_claim_next(user=annotator, run_id=flagged_run.pk)
    review_submit(user=annotator, candidate_id=item.pk, label="no_match", note="Checked by hand.")
    manifest, rows, _ = _build(engineer, published, [flagged_run])
    approved = [row for row in rows if row["pair_id"] == item.pair_id]
    assert len(approved) == 1 and approved[0]["approved_by"] == "reviewers" and approved[0]["label"] == "no_match"
    assert manifest["left_out"]["total"] == len(flagged) - 1
    assert _nonzero(manifest["left_out"]) == _why_left_out([flagged_run], rows)


def test_an_export_can_ask_for_flagged_items_and_still_counts_the_unapproved(flagged_run, published, engineer):
    flagged = Candidate.objects.filter(run=flagged_run).filter(flagged_q()).count()
    manifest, rows, card = _build(engineer, published, [flagged_run], include_flagged=True)
    assert len(rows) == 10 - flagged  # still approved only: flagged items wait for review
    assert _nonzero(manifest["left_out"]) == {"pending_review": flagged}
    manifest, rows, card = _build(engineer, published, [flagged_run], include_flagged=True, approved_only=False)
    assert len(rows) == 10 and sum(row["approved_by"] == "unapproved" for row in rows) == flagged
    assert manifest["left_out"]["total"] == 0 and "flagged items without a human approval included" in card


def test_two_runs_of_the_same_pairs_count_duplicates_and_carry_the_trust_rates(
    flagged_run, published, engineer, openai_config, fake_openai, process_run
):
    fake_openai.responder = HONEST
    honest = openai_config("honest", model="honest-teacher")
    second = process_run(labeling_run_create(version=published, config=honest, selection={"all": True}))
    manifest, rows, card = _build(engineer, published, [flagged_run, second])
    assert len({row["pair_id"] for row in rows}) == len(rows)
    assert _nonzero(manifest["left_out"]) == _why_left_out([flagged_run, second], rows)
    assert manifest["left_out"]["duplicate_pair"] > 0 and manifest["rows"] + manifest["left_out"]["total"] == 20

    first_rates = run_trust_rates(run=flagged_run)
    assert [run["trust"] for run in manifest["runs"]] == [
        first_rates.as_dict(),
        run_trust_rates(run=second).as_dict(),
    ]
    total = manifest["trust"]
    assert total["hallucination"] == {
        "count": first_rates.hallucination.count,  # the honest run invents nothing
        "total": 20,
        "rate": round(first_rates.hallucination.count / 20, 6),
    }
    assert total["injection"]["count"] == 12 and total["judge"] is None
    hallucination = f"hallucination (an ungrounded claim) {first_rates.hallucination.count}/20"
    assert hallucination in card and "judge no judge" in card


def test_the_command_can_include_flagged_items(flagged_run, published, engineer, capsys):
    from django.core.management import call_command

    from exports.models import DatasetExport

    call_command("export_dataset", "--policy", "match", "--version", "1", "--include-unapproved",
                 "--include-flagged", "--user", engineer.username)  # fmt: skip
    export = DatasetExport.objects.get()
    assert export.filters["include_flagged"] is True and export.manifest["rows"] == 10
    assert f"Export #{export.pk}: 10 rows" in capsys.readouterr().out
