"""The statistics behind the agreement and gold pages, checked against published and hand-computed values."""

import pytest

from labeling.metrics import (
    Judged,
    accuracy_report,
    calibration,
    cohen_kappa_pairs,
    krippendorff_alpha,
    per_rule_accuracy,
    threshold_for_precision,
)


def test_krippendorff_alpha_matches_krippendorffs_worked_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 3 coders, 15 units, nominal α = 0.691
    coders = [
        "* * * * * 3 4 1 2 1 1 3 3 * 3",
        "1 * 2 1 3 3 4 3 * * * * * * *",
        "* * 2 1 3 4 4 * 2 1 1 3 3 * 4",
    ]
    ratings = {}
    for coder, row in enumerate(coders):
        for unit, value in enumerate(row.split()):
            if value != "*":
                ratings.setdefault(unit, {})[f"coder{coder}"] = value
    assert krippendorff_alpha(ratings, ["1", "2", "3", "4"]) == pytest.approx(0.691, abs=5e-4)


def test_krippendorff_alpha_is_undefined_without_pairable_items_or_variation():
    assert krippendorff_alpha({1: {"a": "x"}, 2: {"b": "y"}}, ["x", "y"]) is None
    assert krippendorff_alpha({1: {"a": "x", "b": "x"}, 2: {"a": "x", "b": "x"}}, ["x", "y"]) is None


def test_cohen_kappa_per_pair_of_raters_over_shared_items():
    # a: y y n n y, b: y n n n y → observed 0.8, expected 0.6·0.4 + 0.4·0.6 = 0.48, κ = 0.32 / 0.52
    ratings = {i: {"a": a, "b": b} for i, (a, b) in enumerate(zip("yynny", "ynnny"))}
    ratings[99] = {"c": "y"}  # c shares nothing with anyone: no pair for c
    (pair,) = cohen_kappa_pairs(ratings)
    assert (pair.rater_a, pair.rater_b, pair.n) == ("a", "b", 5)
    assert pair.observed == pytest.approx(0.8)
    assert pair.kappa == pytest.approx(0.32 / 0.52)


def test_cohen_kappa_undefined_when_both_raters_use_one_label():
    (pair,) = cohen_kappa_pairs({1: {"a": "x", "b": "x"}, 2: {"a": "x", "b": "x"}})
    assert pair.observed == 1.0 and pair.kappa is None


def test_accuracy_and_confusion_matrix_rows_are_truth_columns_are_teacher():
    items = [Judged("x", "x"), Judged("x", "y"), Judged("y", "y"), Judged("z", "y")]
    report = accuracy_report(items, ["x", "y"])
    assert report.labels == ["x", "y", "z"]  # a label outside the set still shows up
    assert report.matrix == [[1, 0, 0], [1, 1, 1], [0, 0, 0]]
    assert report.accuracy == pytest.approx(0.5)
    assert accuracy_report([], ["x"]).accuracy is None


def test_per_rule_accuracy_counts_each_cited_rule_in_rule_order():
    items = [
        Judged("x", "x", cited_rules=("R10", "R2")),
        Judged("x", "y", cited_rules=("R2", "R2")),
        Judged("y", "y", cited_rules=()),
    ]
    rules = per_rule_accuracy(items)
    assert [(r.rule, r.n, r.correct) for r in rules] == [("R2", 2, 1), ("R10", 1, 1)]
    assert rules[0].accuracy == 0.5


def test_calibration_table_and_expected_calibration_error():
    items = [
        Judged("x", "x", 0.95),
        Judged("x", "y", 0.95),
        Judged("x", "x", 0.55),
        Judged("y", "y", 0.55),
        Judged("y", "y", None),
        Judged("x", "x", 1.0),
    ]
    cal = calibration(items)
    filled = {(round(b.low, 1), b.n) for b in cal.bins if b.n}
    assert filled == {(0.5, 2), (0.9, 3)}  # 1.0 falls in the last bin; no-confidence items are left out
    top = cal.bins[-1]
    assert top.accuracy == pytest.approx(2 / 3) and top.mean_confidence == pytest.approx(2.9 / 3)
    # ECE = 3/5·|2/3 − 0.9667| + 2/5·|1 − 0.55|
    assert cal.ece == pytest.approx(3 / 5 * abs(2 / 3 - 2.9 / 3) + 2 / 5 * 0.45)
    assert calibration([]).ece is None


def test_threshold_for_precision_picks_the_widest_auto_accept_that_keeps_the_target():
    items = [
        Judged("x", "x", 0.9),
        Judged("x", "x", 0.8),
        Judged("x", "y", 0.7),
        Judged("x", "x", 0.6),
        Judged("x", "y", 0.5),
    ]
    at_two_thirds = threshold_for_precision(items, target=0.7)
    assert at_two_thirds.threshold == pytest.approx(0.6)  # ≥0.6: 3 right of 4 = 0.75
    assert (at_two_thirds.accepted, at_two_thirds.n) == (4, 5)
    assert at_two_thirds.precision == pytest.approx(0.75)
    assert threshold_for_precision(items, target=1.0).threshold == pytest.approx(0.8)
    none_right = threshold_for_precision([Judged("x", "y", 0.9)], target=0.5)
    assert none_right.threshold is None and none_right.accepted == 0
