"""Importing a student's predictions (in process; the worker runs the same import, see test_student_worker.py):
every format, what the export said about each pair, and bad files that leave only a failed evaluation (row and
field for each bad row)."""

import pytest
from django.core.exceptions import PermissionDenied

from labeling.models import Pair, StudentEvaluation
from labeling.services.students import StudentError
from tests.labeling.students.conftest import (
    csv_text,
    do_import,
    exported,
    jsonl_text,
    no_predictions,
    parquet_bytes,
    teacher_labels,
)

LABELS = ("strong_match", "partial_match", "no_match")


def _pairs():
    return list(Pair.objects.select_related("member", "job").order_by("id"))


def test_csv_with_external_ids_and_probability_columns(student_export, engineer):
    pairs = _pairs()[:10]
    rows = [
        {"member_id": p.member.external_id, "job_id": p.job.external_id, "label": "no_match",
         "p_strong_match": 0.1, "p_partial_match": 0.2, "p_no_match": 0.7}
        for p in pairs
    ]  # fmt: skip
    result = do_import(
        engineer, student_export, csv_text(rows, ["member_id", "job_id", "label", *[f"p_{k}" for k in LABELS]])
    )
    assert result.ok and result.created, result.errors
    evaluation = result.evaluation
    assert evaluation.purpose == "student_eval" and evaluation.rows == 10 and evaluation.with_probabilities == 10
    rows_of_export = exported(student_export)
    for prediction in evaluation.predictions.select_related("candidate"):
        assert prediction.probabilities == {"strong_match": 0.1, "partial_match": 0.2, "no_match": 0.7}
        assert prediction.confidence == pytest.approx(0.7)
        split, label, run_id = rows_of_export[prediction.pair_id]
        assert (prediction.export_split, prediction.export_label) == (split, label)
        assert prediction.candidate.run_id == run_id and prediction.candidate.pair_id == prediction.pair_id
    assert evaluation.in_train + evaluation.in_validation + evaluation.in_test == 10
    assert evaluation.in_train == sum(1 for p in pairs if rows_of_export[p.pk][0] == "train")


def test_jsonl_with_pair_ids_and_a_probs_object(student_export, engineer):
    teacher = teacher_labels(student_export)
    rows = []
    for p in _pairs()[:5]:
        other = "no_match" if teacher[p.pk] != "no_match" else "partial_match"
        rows.append({"pair_id": p.pk, "label": teacher[p.pk], "probs": {teacher[p.pk]: 0.9, other: 0.1},
                     "cited_rules": ["R1"]})  # fmt: skip
    result = do_import(engineer, student_export, jsonl_text(rows), name="preds.jsonl")
    assert result.ok, result.errors
    assert result.evaluation.with_rules == 5
    assert sorted(result.evaluation.predictions.values_list("confidence", flat=True)) == [pytest.approx(0.9)] * 5


def test_parquet_without_probabilities(student_export, engineer):
    rows = [{"pair_id": p.pk, "label": "partial_match"} for p in _pairs()]
    result = do_import(engineer, student_export, parquet_bytes(rows), name="preds.parquet")
    assert result.ok, result.errors
    assert result.evaluation.rows == 60 and result.evaluation.with_probabilities == 0
    assert set(result.evaluation.predictions.values_list("confidence", flat=True)) == {None}


def test_the_same_idempotency_key_returns_the_first_evaluation(student_export, engineer):
    text = csv_text([{"pair_id": _pairs()[0].pk, "label": "no_match"}], ["pair_id", "label"])
    first = do_import(engineer, student_export, text, idempotency_key="k1")
    again = do_import(engineer, student_export, text, idempotency_key="k1")
    assert first.created and not again.created and again.evaluation.pk == first.evaluation.pk
    assert StudentEvaluation.objects.count() == 1


def test_the_same_student_version_twice_on_one_export_is_refused(student_export, engineer):
    text = csv_text([{"pair_id": _pairs()[0].pk, "label": "no_match"}], ["pair_id", "label"])
    assert do_import(engineer, student_export, text).ok
    with pytest.raises(StudentError, match="already evaluated on export"):
        do_import(engineer, student_export, text)
    assert do_import(engineer, student_export, text, version="2").ok


def test_annotators_and_people_without_a_role_may_not_import(student_export, annotator, nobody):
    text = csv_text([{"pair_id": _pairs()[0].pk, "label": "no_match"}], ["pair_id", "label"])
    for user in (annotator, nobody):
        with pytest.raises(PermissionDenied):
            do_import(user, student_export, text)
    assert no_predictions()


def test_a_policy_owner_may_import(student_export, owner):
    text = csv_text([{"pair_id": _pairs()[0].pk, "label": "no_match"}], ["pair_id", "label"])
    assert do_import(owner, student_export, text).ok


def _errors(result):
    """The bad rows of a file that left nothing but a failed evaluation (none if refused before it was read)."""
    assert not result.ok and no_predictions()
    assert [e.status for e in StudentEvaluation.objects.all()] in ([], ["failed"])
    if result.evaluation is not None:
        assert result.evaluation.rows == 0 and result.evaluation.import_batch.status == "failed"
    return [(e.line, e.field, e.reason) for e in result.errors]


def test_bad_rows_are_listed_with_line_and_field_and_nothing_is_written(student_export, engineer):
    pairs = _pairs()
    good = {"member_id": pairs[0].member.external_id, "job_id": pairs[0].job.external_id, "label": "no_match"}
    rows = [
        good,
        {"member_id": pairs[1].member.external_id, "job_id": pairs[1].job.external_id, "label": "maybe"},
        {"member_id": "ghost", "job_id": "j0", "label": "no_match"},
        {"pair_id": 999999, "label": "no_match"},
        {**good, "p_strong_match": 0.5, "p_no_match": 0.2},
        dict(good),  # the same pair again
        {"pair_id": pairs[2].pk, "member_id": pairs[7].member.external_id, "label": "no_match"},
        {"label": "no_match"},
        {"pair_id": pairs[4].pk, "label": "no_match", "p_no_match": 1.5},
        {"pair_id": pairs[5].pk, "label": "no_match", "cited_rules": "R1;R9"},
    ]
    columns = ["pair_id", "member_id", "job_id", "label", "p_strong_match", "p_partial_match", "p_no_match",
               "cited_rules"]  # fmt: skip
    errors = _errors(do_import(engineer, student_export, csv_text(rows, columns)))
    fields = {(line, field) for line, field, _ in errors}
    assert (3, "label") in fields  # line 1 is the header
    assert (4, "member_id") in fields and (5, "pair_id") in fields
    assert (6, "p_strong_match") in fields and (10, "p_no_match") in fields and (11, "cited_rules") in fields
    assert (8, "pair_id") in fields and (9, "pair_id") in fields
    assert len(errors) == 10  # every row but the first; line 6 is also the pair of line 2 again
    assert (6, "member_id") in fields
    reasons = dict(((line, field), reason) for line, field, reason in errors)
    assert "'maybe' is not a label" in reasons[(3, "label")]
    assert "unknown member id 'ghost'" in reasons[(4, "member_id")]
    assert "unknown pair id 999999" in reasons[(5, "pair_id")]
    assert "add up to 0.7, not 1" in reasons[(6, "p_strong_match")]
    assert "not a probability" in reasons[(10, "p_no_match")]
    assert "'R9' is not a rule" in reasons[(11, "cited_rules")]
    assert "give pair_id, or member_id and job_id" in reasons[(9, "pair_id")]
    assert (7, "member_id") in fields and "duplicate of line 2" in reasons[(7, "member_id")]
    dup = _errors(do_import(engineer, student_export, csv_text([good, good], ["member_id", "job_id", "label"])))
    assert dup == [(3, "member_id", "duplicate of line 2: the same pair")]


def test_a_pair_id_that_contradicts_its_member_and_job_is_a_row_error(student_export, engineer):
    pairs = _pairs()
    other_job = "j4" if pairs[0].job.external_id != "j4" else "j3"
    row = {"pair_id": pairs[0].pk, "member_id": pairs[0].member.external_id, "job_id": other_job, "label": "no_match"}
    errors = _errors(do_import(engineer, student_export, jsonl_text([row]), name="p.jsonl"))
    assert errors[0][:2] == (1, "pair_id") and "not" in errors[0][2]


def test_probs_with_an_unknown_label_or_not_adding_up(student_export, engineer):
    pair = _pairs()[0]
    rows = [
        {"pair_id": pair.pk, "label": "no_match", "probs": {"no_match": 0.9, "maybe": 0.1}},
        {"pair_id": _pairs()[1].pk, "label": "no_match", "probs": {"no_match": 0.5, "strong_match": 0.1}},
        {"pair_id": _pairs()[2].pk, "label": "no_match", "probs": "high"},
    ]
    errors = _errors(do_import(engineer, student_export, jsonl_text(rows), name="p.jsonl"))
    assert errors[0][:2] == (1, "probs.maybe")
    assert errors[1][:2] == (2, "probs") and "add up to 0.6" in errors[1][2]
    assert errors[2][:2] == (3, "probs")


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("p.csv", "", "empty"),
        ("p.csv", "pair_id,colour\n1,red\n", "unknown column"),
        ("p.csv", "pair_id\n1\n", "required column is missing"),
        ("p.parquet", b"not parquet at all", "not a Parquet file"),
        ("p.xlsx", "whatever", "unknown format"),
        ("p.jsonl", "\n\n", "no predictions"),
    ],
)
def test_files_that_cannot_be_read_say_why(student_export, engineer, name, data, expected):
    errors = _errors(do_import(engineer, student_export, data, name=name))
    assert any(expected in reason for _, _, reason in errors), errors


def test_an_export_that_is_not_ready_is_refused(student_export, engineer):
    from exports.services import export_delete

    export_delete(export=student_export, user=engineer)
    with pytest.raises(StudentError, match="is deleted"):
        do_import(
            engineer, student_export, csv_text([{"pair_id": _pairs()[0].pk, "label": "no_match"}], ["pair_id", "label"])
        )
