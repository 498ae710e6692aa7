"""Agreement and evaluation statistics, as pure functions over plain records (no ORM here).

The statistics come from well-kept libraries: scikit-learn for Cohen's κ, the confusion matrix and the
precision-by-threshold curve; ``krippendorff`` (the reference implementation of Krippendorff's α) for α.
Only the reliability table / ECE binning and the per-rule breakdown are computed here, because no library exposes
them in the shape the pages need (sklearn's ``calibration_curve`` drops the bin counts that ECE is weighted by).
"""

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from math import isnan

import numpy as np

# scikit-learn (with SciPy) and krippendorff are imported where they are used: together they add ~70 MB to every
# process that imports this module, and most web and worker processes never compute agreement.


@dataclass(frozen=True)
class Judged:
    """One item where a model (the teacher, a config, a version) answered and a human truth is known."""

    predicted: str
    truth: str
    confidence: float | None = None
    cited_rules: tuple[str, ...] = ()

    @property
    def correct(self) -> bool:
        return self.predicted == self.truth


@dataclass(frozen=True)
class AccuracyReport:
    n: int
    correct: int
    labels: list[str]
    matrix: list[list[int]]  # rows: truth (human), columns: predicted (teacher), in ``labels`` order

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def rows(self) -> list[tuple[str, list[int]]]:
        return list(zip(self.labels, self.matrix, strict=True))


def accuracy_report(items: list[Judged], labels: list[str]) -> AccuracyReport:
    """Accuracy and the confusion matrix over ``labels`` plus any label that occurs but is not in the set."""
    seen = {label for item in items for label in (item.predicted, item.truth)}
    order = list(labels) + sorted(seen - set(labels))
    if not items:
        return AccuracyReport(0, 0, order, [[0] * len(order) for _ in order])
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix([i.truth for i in items], [i.predicted for i in items], labels=order)
    return AccuracyReport(len(items), sum(i.correct for i in items), order, matrix.tolist())


@dataclass(frozen=True)
class RuleAccuracy:
    rule: str
    n: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n


def _rule_sort_key(rule: str) -> tuple:
    digits = rule.lstrip("R")
    return (0, int(digits), rule) if digits.isdigit() else (1, 0, rule)


def per_rule_accuracy(items: list[Judged]) -> list[RuleAccuracy]:
    """Teacher accuracy over the items whose answer cited each rule (an item citing two rules counts for both)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        for rule in set(item.cited_rules):
            counts[rule][0] += 1
            counts[rule][1] += item.correct
    return [RuleAccuracy(rule, n, ok) for rule, (n, ok) in sorted(counts.items(), key=lambda kv: _rule_sort_key(kv[0]))]


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    n: int
    mean_confidence: float | None
    accuracy: float | None

    @property
    def gap(self) -> float | None:
        return None if self.n == 0 else abs(self.accuracy - self.mean_confidence)


@dataclass(frozen=True)
class Calibration:
    n: int
    bins: list[CalibrationBin]
    ece: float | None  # expected calibration error: Σ (n_b / n) · |accuracy_b − confidence_b|


def calibration(items: list[Judged], *, n_bins: int = 10) -> Calibration:
    """Reliability table over equal-width confidence bins (the last bin includes 1.0) and the ECE.
    Items without a confidence are left out."""
    scored = [i for i in items if i.confidence is not None]
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    if not scored:
        empty = [CalibrationBin(float(lo), float(hi), 0, None, None) for lo, hi in zip(edges, edges[1:], strict=False)]
        return Calibration(0, empty, None)
    conf = np.clip(np.array([i.confidence for i in scored], dtype=float), 0.0, 1.0)
    correct = np.array([i.correct for i in scored], dtype=float)
    which = np.minimum(np.digitize(conf, edges[1:-1], right=False), n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        mask = which == b
        n = int(mask.sum())
        if n:
            mean_conf, acc = float(conf[mask].mean()), float(correct[mask].mean())
            ece += n / len(scored) * abs(acc - mean_conf)
            bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), n, mean_conf, acc))
        else:
            bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), 0, None, None))
    return Calibration(len(scored), bins, ece)


@dataclass(frozen=True)
class ThresholdForPrecision:
    target: float
    threshold: float | None  # auto-accept when confidence ≥ threshold; None when no threshold reaches the target
    precision: float | None  # teacher accuracy among the items at or above the threshold
    accepted: int  # reviewed items at or above the threshold
    n: int  # reviewed items with a confidence


def threshold_for_precision(items: list[Judged], *, target: float) -> ThresholdForPrecision:
    """The lowest confidence threshold at which the teacher's label is right on at least ``target`` of the reviewed
    items it would auto-accept (precision of "teacher is right"), i.e. the largest coverage that keeps the target."""
    return threshold_for_precision_counts(confidence_counts(items), target=target)


def confidence_counts(items: list[Judged]) -> list[tuple[float, int, int]]:
    """(confidence, items, correct) per distinct confidence, ascending: all the threshold depends on, so it can be
    kept with precomputed figures and the threshold found again for any target."""
    counts: dict[float, list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        if item.confidence is not None:
            counts[item.confidence][0] += 1
            counts[item.confidence][1] += item.correct
    return [(confidence, n, correct) for confidence, (n, correct) in sorted(counts.items())]


def threshold_for_precision_counts(counts: list[tuple[float, int, int]], *, target: float) -> ThresholdForPrecision:
    """:func:`threshold_for_precision` over :func:`confidence_counts` (the curve depends only on these counts)."""
    n = sum(row[1] for row in counts)
    if not n or not any(row[2] for row in counts):
        return ThresholdForPrecision(target, None, None, 0, n)
    from sklearn.metrics import precision_recall_curve

    scores = np.repeat(np.array([row[0] for row in counts], dtype=float), [row[1] for row in counts])
    y_true = np.concatenate([np.repeat([1, 0], [correct, total - correct]) for _, total, correct in counts])
    precision, _recall, thresholds = precision_recall_curve(y_true.astype(int), scores)
    # thresholds are increasing; precision[k] is the precision of "score ≥ thresholds[k]"
    for k, threshold in enumerate(thresholds):
        if precision[k] >= target:
            accepted = int((scores >= threshold).sum())
            return ThresholdForPrecision(target, float(threshold), float(precision[k]), accepted, n)
    return ThresholdForPrecision(target, None, None, 0, n)


# --- inter-annotator agreement -------------------------------------------------------------------------------------

Ratings = dict[object, dict[object, str]]  # item → {rater → label}


@dataclass(frozen=True)
class PairKappa:
    rater_a: object
    rater_b: object
    n: int  # items both rated
    observed: float  # share of those items where they agree
    kappa: float | None  # None when undefined (both used one and the same label throughout)


def cohen_kappa_pairs(ratings: Ratings) -> list[PairKappa]:
    """Cohen's κ for every pair of raters over the items both rated (pairs with no shared item are left out)."""
    from sklearn.metrics import cohen_kappa_score

    by_rater: dict[object, dict[object, str]] = defaultdict(dict)
    for item, votes in ratings.items():
        for rater, label in votes.items():
            by_rater[rater][item] = label
    result = []
    for a, b in combinations(sorted(by_rater, key=str), 2):
        shared = sorted(by_rater[a].keys() & by_rater[b].keys(), key=str)
        if not shared:
            continue
        la = [by_rater[a][i] for i in shared]
        lb = [by_rater[b][i] for i in shared]
        observed = sum(x == y for x, y in zip(la, lb, strict=True)) / len(shared)
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = float(cohen_kappa_score(la, lb)) if len(set(la) | set(lb)) > 1 else None
        result.append(PairKappa(a, b, len(shared), observed, None if kappa is None or isnan(kappa) else kappa))
    return result


def krippendorff_alpha(ratings: Ratings, labels: list[str]) -> float | None:
    """Krippendorff's α (nominal) over all raters and the items at least two of them rated. None when undefined: no
    item has two ratings, or every rating is the same label (α's expected disagreement is then 0)."""
    pairable = {item: votes for item, votes in ratings.items() if len(votes) >= 2}
    if not pairable:
        return None
    order = list(labels) + sorted({v for votes in pairable.values() for v in votes.values()} - set(labels))
    code = {label: float(k) for k, label in enumerate(order)}
    raters = sorted({r for votes in pairable.values() for r in votes}, key=str)
    data = np.full((len(raters), len(pairable)), np.nan)
    row = {r: k for k, r in enumerate(raters)}
    for col, votes in enumerate(pairable.values()):
        for rater, label in votes.items():
            data[row[rater], col] = code[label]
    if len({v for votes in pairable.values() for v in votes.values()}) < 2:
        return None
    import krippendorff

    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


# --- per label -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelScore:
    """How a model did on one label: ``support`` items truly had it, ``predicted`` items were given it, ``correct``
    of them both (precision = correct / predicted, recall = correct / support)."""

    label: str
    support: int
    predicted: int
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.support if self.support else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        return None if p is None or r is None or p + r == 0 else 2 * p * r / (p + r)


def per_label_scores(report: AccuracyReport) -> list[LabelScore]:
    """Precision, recall and F1 of every label of an accuracy report, read off its confusion matrix."""
    matrix = report.matrix
    return [
        LabelScore(label, sum(matrix[k]), sum(row[k] for row in matrix), matrix[k][k])
        for k, label in enumerate(report.labels)
    ]
