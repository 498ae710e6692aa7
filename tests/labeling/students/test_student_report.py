"""A student's report: scored against gold, the human-approved labels, the teacher and the export's test split, per
label, per cited rule, calibrated when it gave probabilities, with a leakage warning for train-split pairs."""

import json

import pytest

from labeling.models import Candidate
from labeling.selectors.students import student_figures, student_report
from tests.labeling.students.conftest import csv_text, do_import, exported, teacher_labels

OTHER = {"strong_match": "no_match", "partial_match": "no_match", "no_match": "partial_match"}


def _import_all(engineer, export, wrong: set[int], confidence: float = 0.8):
    """A prediction for every exported pair: the teacher's label, except on ``wrong`` pairs."""
    teacher = teacher_labels(export)
    rows = []
    for pair_id in sorted(teacher):
        label = OTHER[teacher[pair_id]] if pair_id in wrong else teacher[pair_id]
        rest = (1 - confidence) / 2
        probs = {key: (confidence if key == label else rest) for key in ("strong_match", "partial_match", "no_match")}
        rows.append({"pair_id": pair_id, "label": label, **{f"p_{k}": v for k, v in probs.items()}})
    columns = ["pair_id", "label", "p_strong_match", "p_partial_match", "p_no_match"]
    result = do_import(engineer, export, csv_text(rows, columns))
    assert result.ok, result.errors
    return result.evaluation


def test_scores_against_teacher_gold_humans_and_the_test_split(student_export, engineer):
    human = list(Candidate.objects.human_approved().order_by("pair_id"))
    assert len(human) == 3  # and gold too (the fixture marks them)
    teacher = teacher_labels(student_export)
    plain = sorted(set(teacher) - {c.pair_id for c in human})
    wrong = set(plain[:6])
    evaluation = _import_all(engineer, student_export, wrong)
    report = student_report(evaluation=evaluation)

    vs_teacher = report.comparison("teacher").evaluation.accuracy
    assert (vs_teacher.n, vs_teacher.correct) == (60, 54)
    for key in ("gold", "human"):
        acc = report.comparison(key).evaluation.accuracy
        expected = sum(teacher[c.pair_id] == c.approved_label for c in human)  # the student copies the teacher
        assert (acc.n, acc.correct) == (3, expected), key
    rows = exported(student_export)
    test_pairs = [p for p, (split, _label, _run) in rows.items() if split == "test"]
    test = report.comparison("test_split").evaluation.accuracy
    assert test.n == len(test_pairs) == evaluation.in_test > 0
    expected_test = sum(
        (OTHER[teacher[p]] if p in wrong else teacher[p]) == rows[p][1] for p in test_pairs
    )  # fmt: skip
    assert test.correct == expected_test
    assert report.disagreements["teacher"] == 6

    # per label: precision and recall read off the confusion matrix against the teacher
    scores = {s.label: s for s in report.comparison("teacher").per_label}
    assert sum(s.support for s in scores.values()) == 60
    assert sum(s.correct for s in scores.values()) == 54
    # the student cited no rules: per-rule accuracy is over the rules the teacher cited (the heuristic cites none)
    assert report.rules_from == "teacher" and report.comparison("teacher").evaluation.per_rule == []
    # calibration: every prediction said 0.8
    cal = report.comparison("teacher").evaluation.calibration
    assert cal.n == 60 and cal.ece == pytest.approx(abs(54 / 60 - 0.8))


def test_predicted_train_pairs_are_a_leakage_warning(student_export, engineer):
    evaluation = _import_all(engineer, student_export, set())
    report = student_report(evaluation=evaluation)
    rows = exported(student_export)
    in_train = sorted(p for p, (split, *_rest) in rows.items() if split == "train")
    assert evaluation.in_train == len(in_train) > 0 and report.leakage
    assert [p.pair_id for p in report.leaked] == in_train[: len(report.leaked)]
    assert report.leaked[0].pair.member.external_id


def test_gold_and_reviews_added_after_the_import_count_when_read(student_export, engineer, owner):
    evaluation = _import_all(engineer, student_export, set())
    assert student_report(evaluation=evaluation).comparison("gold").evaluation.accuracy.n == 3
    from labeling.models import GoldLabel

    GoldLabel.objects.filter(policy=student_export.policy_version.policy).delete()
    assert student_report(evaluation=evaluation).comparison("gold").evaluation.accuracy.n == 0


def test_figures_are_a_plain_dict_for_charts(student_export, engineer):
    evaluation = _import_all(engineer, student_export, {1, 2, 3})
    figures = student_figures(student_report(evaluation=evaluation))
    json.dumps(figures)  # plain values only
    assert figures["purpose"] == "student_eval"
    assert set(figures["comparisons"]) == {"gold", "human", "teacher", "test_split"}
    teacher = figures["comparisons"]["teacher"]
    assert teacher["labels"][:3] == ["strong_match", "partial_match", "no_match"]
    assert sum(map(sum, teacher["confusion"])) == teacher["n"] == 60
    assert len(teacher["calibration"]["bins"]) == 10 and teacher["calibration"]["n"] == 60
    assert {"label", "support", "precision", "recall", "f1"} <= set(teacher["per_label"][0])


def test_without_probabilities_there_is_no_calibration(student_export, engineer):
    teacher = teacher_labels(student_export)
    rows = [{"pair_id": p, "label": label} for p, label in sorted(teacher.items())]
    evaluation = do_import(engineer, student_export, csv_text(rows, ["pair_id", "label"])).evaluation
    cal = student_report(evaluation=evaluation).comparison("teacher").evaluation.calibration
    assert cal.n == 0 and cal.ece is None


def test_per_rule_accuracy_over_the_rules_the_student_cited(student_export, engineer):
    teacher = teacher_labels(student_export)
    rows = []
    for n, (pair_id, label) in enumerate(sorted(teacher.items())):
        rows.append(
            {"pair_id": pair_id, "label": label if n % 2 else OTHER[label], "cited_rules": "R1" if n < 10 else "R2;R3"}
        )
    evaluation = do_import(engineer, student_export, csv_text(rows, ["pair_id", "label", "cited_rules"])).evaluation
    report = student_report(evaluation=evaluation)
    assert report.rules_from == "student"
    per_rule = {r.rule: r for r in report.comparison("teacher").evaluation.per_rule}
    assert (per_rule["R1"].n, per_rule["R1"].correct) == (10, 5)
    assert (per_rule["R2"].n, per_rule["R2"].correct) == (50, 25)
    assert per_rule["R3"].text == "Location is compatible or the job is remote."


def test_gold_scores_read_the_students_labels_through_a_later_label_mapping(
    student_export, engineer, owner, policy, client_for
):
    """Publishing a version that renames a label rewrites gold in the new keys; a student trained on the older
    export still predicts the old keys. Its gold score reads them through the mapping (rename counts as the same
    label) and leaves out a prediction whose label was split since, saying how many."""
    from labeling.models import GoldLabel
    from labeling.selectors.students import student_disagreements
    from labeling.services import gold_relabel_set
    from policyhub import services as policy_services

    gold = dict(GoldLabel.objects.values_list("pair_id", "label"))
    by_label = {label: sorted(p for p, g in gold.items() if g == label) for label in set(gold.values())}
    assert by_label == {"no_match": by_label["no_match"], "partial_match": by_label["partial_match"]}
    right, wrong = by_label["no_match"]  # gold no_match: one predicted right, one wrong
    (split,) = by_label["partial_match"]
    rows = [
        {"pair_id": right, "label": "no_match"},
        {"pair_id": wrong, "label": "strong_match"},
        {"pair_id": split, "label": "partial_match"},
    ]
    result = do_import(engineer, student_export, csv_text(rows, ["pair_id", "label"]))
    assert result.ok, result.errors

    draft = policy.versions.get(number=2)
    draft = policy_services.policy_version_draft_save(
        version=draft, user=owner, revision=draft.revision, body=draft.body + "\nv2\n", rules=draft.rules,
        labels=[{"key": "strong_match", "title": "Strong", "definition": "Meets the must-haves."},
                {"key": "maybe_match", "title": "Maybe", "definition": "Gaps training closes."},
                {"key": "stretch_match", "title": "Stretch", "definition": "Bigger gaps."},
                {"key": "not_a_match", "title": "Not a match", "definition": "A must-have is missing."}],
        label_mapping={"no_match": ["not_a_match"], "partial_match": ["maybe_match", "stretch_match"]},
    )  # fmt: skip
    gold_relabel_set(user=owner, draft=draft, pair_id=split, label="maybe_match")
    draft.refresh_from_db()
    policy_services.policy_version_publish(version=draft, user=owner, revision=draft.revision)
    assert dict(GoldLabel.objects.values_list("pair_id", "label")) == {
        right: "not_a_match",
        wrong: "not_a_match",
        split: "maybe_match",
    }

    report = student_report(evaluation=result.evaluation)
    vs_gold = report.comparison("gold").evaluation.accuracy
    assert (vs_gold.n, vs_gold.correct) == (2, 1)  # no_match is not_a_match now; the split prediction is left out
    assert "not_a_match" in vs_gold.labels and "no_match" not in vs_gold.labels
    assert report.gold_split == 1
    assert report.disagreements["gold"] == 1
    assert [p.pair_id for p in student_disagreements(evaluation=result.evaluation, against="gold")] == [wrong]
    page = client_for(engineer).get(f"/students/{result.evaluation.pk}/").content.decode()
    assert 'id="student-gold-split">1 prediction on gold pairs is not scored against gold' in page
