"""Teacher-vs-truth evaluation reports: the figures the agreement, gold and draft-preview pages show.

``evaluation_report`` turns plain ``Judged`` records (teacher label, true label, confidence, cited rules) into one
``EvaluationReport`` rendered by ``templates/labeling/_evaluation.html``; where the truth comes from (human reviews,
the gold set) is the caller's business.
"""

from dataclasses import dataclass

from policyhub.models import PolicyVersion

from .metrics import (
    AccuracyReport,
    Calibration,
    Judged,
    ThresholdForPrecision,
    accuracy_report,
    calibration,
    per_rule_accuracy,
    threshold_for_precision,
)

DEFAULT_TARGET_PRECISION = 0.95


@dataclass(frozen=True)
class RuleRow:
    rule: str
    text: str  # the rule's text in the version evaluated ("" when the teacher cited a rule it does not have)
    n: int
    correct: int
    accuracy: float


@dataclass(frozen=True)
class EvaluationReport:
    accuracy: AccuracyReport
    per_rule: list[RuleRow]
    calibration: Calibration
    threshold: ThresholdForPrecision


def parse_target_precision(raw: str | None) -> float:
    """The target precision from a query string: a number in [0.5, 1]; the default when blank."""
    if raw in (None, ""):
        return DEFAULT_TARGET_PRECISION
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"Target precision must be a number between 0.5 and 1, not {raw!r}.") from None
    if not 0.5 <= value <= 1:
        raise ValueError(f"Target precision must be between 0.5 and 1, not {value}.")
    return value


def evaluation_report(
    items: list[Judged], *, version: PolicyVersion, target_precision: float = DEFAULT_TARGET_PRECISION
) -> EvaluationReport:
    rule_text = {rule["id"]: rule.get("text", "") for rule in version.rules}
    return EvaluationReport(
        accuracy=accuracy_report(items, version.label_keys),
        per_rule=[
            RuleRow(r.rule, rule_text.get(r.rule, ""), r.n, r.correct, r.accuracy) for r in per_rule_accuracy(items)
        ],
        calibration=calibration(items),
        threshold=threshold_for_precision(items, target=target_precision),
    )


def evaluation_figures(evaluation: EvaluationReport) -> dict:
    """The report as plain JSON-able figures: what the API answers for agreement, gold scores and draft previews."""
    accuracy, calibration, threshold = evaluation.accuracy, evaluation.calibration, evaluation.threshold
    return {
        "items": accuracy.n,
        "accuracy": accuracy.accuracy,
        "labels": accuracy.labels,
        "confusion": accuracy.matrix,
        "per_rule": [{"rule": r.rule, "items": r.n, "correct": r.correct} for r in evaluation.per_rule],
        "ece": calibration.ece,
        "reliability": [
            {"low": b.low, "high": b.high, "items": b.n, "confidence": b.mean_confidence, "accuracy": b.accuracy}
            for b in calibration.bins
            if b.n
        ],
        "threshold": {
            "target_precision": threshold.target,
            "threshold": threshold.threshold,
            "precision": threshold.precision,
            "accepted": threshold.accepted,
            "items": threshold.n,
        },
    }
