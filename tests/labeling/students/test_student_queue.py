"""A student's disagreements go to annotators (reason student_disagreement, most confident first); their reviews
are the approved labels the next export takes."""

import json

import pytest

from exports import services as export_services
from labeling.models import Candidate, ReviewState
from labeling.services import review_claim_next, review_submit
from labeling.services.students import StudentError, student_disagreements_queue
from tests.labeling.students.conftest import SPLIT, csv_text, do_import, teacher_labels

OTHER = {"strong_match": "no_match", "partial_match": "no_match", "no_match": "partial_match"}


def _csv_probs(engineer, export, wrong):
    teacher = teacher_labels(export)
    rows = []
    for pair_id, label in sorted(teacher.items()):
        p = 0.9
        if pair_id in wrong:
            label, p = OTHER[label], wrong[pair_id]
        probs = {f"p_{k}": (p if k == label else (1 - p) / 2) for k in ("strong_match", "partial_match", "no_match")}
        rows.append({"pair_id": pair_id, "label": label, **probs})
    columns = ["pair_id", "label", "p_strong_match", "p_partial_match", "p_no_match"]
    result = do_import(engineer, export, csv_text(rows, columns))
    assert result.ok, result.errors
    return result.evaluation


def _labels_rows(export):
    path = export_services.export_dir(export) / "labels.jsonl"
    return {row["pair_id"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_queue_review_export_the_reviewed_label_is_in_the_next_export(student_export, engineer, annotator):
    auto = list(
        Candidate.objects.filter(run__in=student_export.runs.all(), approved_by="teacher").order_by("pair_id")[:4]
    )
    human = Candidate.objects.filter(approved_by__in=["reviewers", "adjudicator"]).order_by("pair_id").first()
    confidence = {auto[0].pair_id: 0.55, auto[1].pair_id: 0.95, auto[2].pair_id: 0.75, auto[3].pair_id: 0.65}
    confidence[human.pair_id] = 0.99
    evaluation = _csv_probs(engineer, student_export, confidence)
    student = {p.pair_id: p.label for p in evaluation.predictions.all()}

    result = student_disagreements_queue(user=engineer, evaluation=evaluation)
    assert (result.disagreements, result.queued, result.decided) == (5, 4, 1)
    queued = Candidate.objects.filter(reason_student_disagreement=True)
    assert set(queued.values_list("pair_id", flat=True)) == set(confidence) - {human.pair_id}
    assert set(queued.values_list("review_state", "routing", "approved_label")) == {("pending", "needs_review", "")}
    human.refresh_from_db()
    assert human.review_state == ReviewState.DONE and not human.reason_student_disagreement  # humans decided it

    # annotators get the student's most confident disagreements first
    order = []
    for _ in range(3):
        item = review_claim_next(user=annotator, reason="student_disagreement")
        order.append(item.pair_id)
        review_submit(user=annotator, candidate_id=item.pk, label=student[item.pair_id])
    assert order == [auto[1].pair_id, auto[2].pair_id, auto[3].pair_id]

    # queueing again adds nothing
    again = student_disagreements_queue(user=engineer, evaluation=evaluation)
    assert (again.queued, again.already_waiting, again.decided) == (0, 1, 4)

    export, _ = export_services.export_create(
        user=engineer, version=student_export.policy_version, runs=list(student_export.runs.all()), split=SPLIT
    )
    export = export_services.export_build(export_id=export.pk)
    rows = _labels_rows(export)
    for pair_id in order:
        assert rows[pair_id]["label"] == student[pair_id] != rows[pair_id]["teacher_label"]
        assert rows[pair_id]["approved_by"] == "reviewers" and "student_disagreement" in rows[pair_id]["reasons"]
    # the one still waiting for its review is left out until a human decides
    assert auto[0].pair_id not in rows and auto[0].pair_id in _labels_rows(student_export)
    assert export.manifest["left_out"]["pending_review"] >= 1


def test_against_gold_queues_the_pairs_where_the_student_contradicts_gold(student_export, engineer):
    human = list(Candidate.objects.filter(approved_by__in=["reviewers", "adjudicator"]).order_by("pair_id"))
    evaluation = _csv_probs(engineer, student_export, {})  # copies the teacher everywhere
    result = student_disagreements_queue(user=engineer, evaluation=evaluation, against="gold")
    off_gold = sum(c.label != c.approved_label for c in human)
    assert result.disagreements == off_gold and result.decided == off_gold and result.queued == 0


def test_limit_queues_the_most_confident_first(student_export, engineer):
    auto = list(Candidate.objects.filter(approved_by="teacher").order_by("pair_id")[:3])
    evaluation = _csv_probs(engineer, student_export, {auto[0].pair_id: 0.5, auto[1].pair_id: 0.9,
                                                       auto[2].pair_id: 0.7})  # fmt: skip
    result = student_disagreements_queue(user=engineer, evaluation=evaluation, limit=1)
    assert result.queued == 1
    assert list(Candidate.objects.filter(reason_student_disagreement=True).values_list("pair_id", flat=True)) == [
        auto[1].pair_id
    ]


def test_queue_refuses_bad_input_and_annotators(student_export, engineer, annotator):
    from django.core.exceptions import PermissionDenied

    evaluation = _csv_probs(engineer, student_export, {})
    with pytest.raises(StudentError, match="against must be one of"):
        student_disagreements_queue(user=engineer, evaluation=evaluation, against="mood")
    with pytest.raises(StudentError, match="limit"):
        student_disagreements_queue(user=engineer, evaluation=evaluation, limit=0)
    with pytest.raises(PermissionDenied):
        student_disagreements_queue(user=annotator, evaluation=evaluation)
