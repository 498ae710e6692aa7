"""Aggregate a pair's teacher answers into a candidate and decide whether a human must review it.

* soft label: the mean of the answers' label distributions when logprobs were read, else the vote shares;
* label: the most probable label (ties go to the label listed first in the policy);
* reasons for review: ``self_disagreement`` (vote share of the label below ``min_vote_share``, only with K > 1),
  ``low_confidence`` (its probability below ``min_confidence``), ``teacher_disagreement`` (another run of the same
  policy version labeled the pair differently), ``gold_conflict`` (a gold label says otherwise),
  ``trust_check_failed`` (any trust check failed), ``suspected_injection`` (the member's or the job's text holds
  text aimed at a model: see ``labeling.pipeline.injection``). No reason: ``auto_accepted``.
"""

from collections import Counter
from dataclasses import dataclass, field

DEFAULT_THRESHOLDS = {"min_vote_share": 0.8, "min_confidence": 0.7}


def thresholds_with_defaults(values: dict | None) -> dict:
    merged = {**DEFAULT_THRESHOLDS, **(values or {})}
    for name, value in merged.items():
        if name not in DEFAULT_THRESHOLDS:
            raise ValueError(f"Unknown threshold {name!r}; expected {', '.join(DEFAULT_THRESHOLDS)}.")
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"Threshold {name} must be a number between 0 and 1, not {value!r}.")
    return merged


@dataclass
class Aggregate:
    label: str
    distribution: dict[str, float]
    vote_share: float
    confidence: float
    reasons: set[str] = field(default_factory=set)

    @property
    def routing(self) -> str:
        return "needs_review" if self.reasons else "auto_accepted"


def aggregate(answers: list, labels: tuple[str, ...], *, samples_requested: int) -> Aggregate:
    """``answers``: the valid answers of one pair (objects with ``label`` and ``label_probs``)."""
    votes = Counter(a.label for a in answers)
    if all(a.label_probs for a in answers):
        distribution = {label: sum(a.label_probs.get(label, 0.0) for a in answers) / len(answers) for label in labels}
    else:
        distribution = {label: votes[label] / len(answers) for label in labels}
    total = sum(distribution.values()) or 1.0
    distribution = {label: round(p / total, 6) for label, p in distribution.items()}
    label = max(labels, key=lambda key: (distribution[key], votes[key], -labels.index(key)))
    return Aggregate(
        label=label,
        distribution=distribution,
        vote_share=votes[label] / len(answers),
        confidence=distribution[label],
    )


def route(agg: Aggregate, *, thresholds: dict, samples_requested: int, trust_ok: bool,
          other_labels: set[str], gold_label: str | None, suspected_injection: bool = False) -> Aggregate:  # fmt: skip
    if samples_requested > 1 and agg.vote_share < thresholds["min_vote_share"]:
        agg.reasons.add("self_disagreement")
    if agg.confidence < thresholds["min_confidence"]:
        agg.reasons.add("low_confidence")
    if other_labels - {agg.label}:
        agg.reasons.add("teacher_disagreement")
    if gold_label is not None and gold_label != agg.label:
        agg.reasons.add("gold_conflict")
    if not trust_ok:
        agg.reasons.add("trust_check_failed")
    if suspected_injection:
        agg.reasons.add("suspected_injection")
    return agg
