"""Reads for students: the evaluations of an export, one evaluation's report, and its disagreements.

Every accuracy, confusion, per-rule and calibration figure comes from ``labeling.evaluation.evaluation_report``
over ``Judged`` records built here (predicted = the student's label), against four truths: the gold set, the
human-approved labels and the teacher's labels of the export's runs on the same pairs, and the exported label on
the export's own test split. They are computed when read, so reviews and gold labels added after the import count.
:func:`student_figures` gives the same figures as a plain dict (the API's ``figures``, and what charts draw).
"""

from dataclasses import dataclass, field

from django.db.models import QuerySet

from policyhub.labelmap import translate

from ..evaluation import DEFAULT_TARGET_PRECISION, EvaluationReport, evaluation_report
from ..metrics import Judged, LabelScore, per_label_scores
from ..models import Candidate, LabelingRun, StudentEvaluation, StudentPrediction
from .gold import gold_labels, gold_reading, run_answers

#: The truths a student is scored against, in the order the report shows them.
TRUTHS = {
    "gold": "gold",
    "human": "human-approved labels",
    "teacher": "teacher",
    "test_split": "export's test split",
}
#: How many leaked pairs the report names.
LEAKED_SHOWN = 20


def student_list(*, export_id: int | None = None, limit: int = 200) -> QuerySet[StudentEvaluation]:
    qs = StudentEvaluation.objects.select_related("export", "policy_version__policy", "created_by", "import_batch")
    if export_id is not None:
        qs = qs.filter(export_id=export_id)
    return qs.order_by("-created_at", "-id")[:limit]


def student_get(*, pk: int) -> StudentEvaluation:
    return StudentEvaluation.objects.select_related(
        "export", "policy_version__policy", "created_by", "queued_by", "import_batch"
    ).get(pk=pk)


@dataclass
class Comparison:
    key: str  # one of TRUTHS
    truth_name: str
    evaluation: EvaluationReport
    per_label: list[LabelScore]


@dataclass
class StudentReport:
    evaluation: StudentEvaluation
    comparisons: list[Comparison]
    rules_from: str  # "student": the rules the student cited; "teacher": the teacher's (the student cited none)
    runs: list[LabelingRun]
    leaked: list[StudentPrediction]  # the first LEAKED_SHOWN predicted pairs of the export's train split
    not_in_export: int
    disagreements: dict[str, int] = field(default_factory=dict)  # against → predictions
    queued: int = 0  # predictions whose disagreement was queued
    gold_split: int = 0  # predictions on gold pairs not scored against gold: their label was split since

    @property
    def leakage(self) -> bool:
        return self.evaluation.in_train > 0

    def comparison(self, key: str) -> Comparison:
        return next(c for c in self.comparisons if c.key == key)


def _predictions(evaluation: StudentEvaluation) -> list[StudentPrediction]:
    return list(
        evaluation.predictions.select_related("candidate").only(
            "pair_id", "line", "label", "confidence", "cited_rules", "export_split", "export_label", "queued_at",
            "candidate__status", "candidate__label", "candidate__run_id", "candidate__review_state",
            "candidate__approved_by", "candidate__approved_label",
        )
    )  # fmt: skip


def _teacher_label(prediction: StudentPrediction) -> str | None:
    candidate = prediction.candidate
    return candidate.label if candidate is not None and candidate.status == Candidate.Status.LABELED else None


def _teacher_rules(predictions: list[StudentPrediction]) -> dict[int, tuple[str, ...]]:
    """{pair id: rules the teacher's samples cited for its label}, per run of the candidates."""
    by_run: dict[int, list[int]] = {}
    for p in predictions:
        if _teacher_label(p) is not None:
            by_run.setdefault(p.candidate.run_id, []).append(p.pair_id)
    rules: dict[int, tuple[str, ...]] = {}
    for run in LabelingRun.objects.filter(pk__in=by_run):
        for pair_id, answer in run_answers(run=run, pair_ids=by_run[run.pk]).items():
            rules[pair_id] = answer.cited_rules
    return rules


def student_report(
    *, evaluation: StudentEvaluation, target_precision: float = DEFAULT_TARGET_PRECISION
) -> StudentReport:
    version = evaluation.policy_version
    predictions = _predictions(evaluation)
    gold = gold_labels(policy=version.policy)
    # gold is kept in the newest version's labels: the student's (its export's version's) read through the mappings
    translation, gold_version = gold_reading(version)
    gold_split = 0
    rules_from = "student" if evaluation.with_rules else "teacher"
    teacher_rules = _teacher_rules(predictions) if rules_from == "teacher" else {}
    items: dict[str, list[Judged]] = {key: [] for key in TRUTHS}
    disagree = {"teacher": 0, "gold": 0, "either": 0}
    for p in predictions:
        rules = tuple(p.cited_rules) if rules_from == "student" else teacher_rules.get(p.pair_id, ())

        def judged(truth: str, p=p, rules=rules, predicted=None) -> Judged:
            return Judged(predicted=predicted or p.label, truth=truth, confidence=p.confidence, cited_rules=rules)

        teacher = _teacher_label(p)
        in_gold_keys = translate(p.label, translation)
        if p.pair_id in gold and in_gold_keys is None:
            gold_split += 1
        elif p.pair_id in gold:
            items["gold"].append(judged(gold[p.pair_id], predicted=in_gold_keys))
        if p.candidate is not None and p.candidate.is_human_approved:
            items["human"].append(judged(p.candidate.approved_label))
        if teacher is not None:
            items["teacher"].append(judged(teacher))
        if p.export_split == StudentPrediction.Split.TEST:
            items["test_split"].append(judged(p.export_label))
        off_teacher = teacher is not None and teacher != p.label
        off_gold = p.pair_id in gold and in_gold_keys is not None and gold[p.pair_id] != in_gold_keys
        disagree["teacher"] += off_teacher
        disagree["gold"] += off_gold
        disagree["either"] += off_teacher or off_gold
    comparisons = []
    for key, name in TRUTHS.items():
        scored_under = gold_version if key == "gold" else version
        report = evaluation_report(items[key], version=scored_under, target_precision=target_precision)
        comparisons.append(Comparison(key, name, report, per_label_scores(report.accuracy)))
    leaked = list(
        evaluation.predictions.filter(export_split=StudentPrediction.Split.TRAIN)
        .select_related("pair__member", "pair__job")
        .order_by("line")[:LEAKED_SHOWN]
    )
    return StudentReport(
        evaluation=evaluation,
        comparisons=comparisons,
        rules_from=rules_from,
        runs=list(evaluation.export.runs.select_related("teacher_config").order_by("pk")),
        leaked=leaked,
        not_in_export=sum(1 for p in predictions if not p.export_split),
        disagreements=disagree,
        queued=sum(1 for p in predictions if p.queued_at),
        gold_split=gold_split,
    )


def student_disagreements(*, evaluation: StudentEvaluation, against: str = "teacher") -> list[StudentPrediction]:
    """Predictions that disagree with the teacher's label, the gold label or either (``against``), the student's
    most confident first (no probabilities: last, in file order). Each carries ``teacher_label`` and
    ``gold_label`` (None when there is none)."""
    gold = gold_labels(policy=evaluation.policy_version.policy)
    translation, _ = gold_reading(evaluation.policy_version)
    found = []
    for p in evaluation.predictions.select_related("candidate", "pair__member", "pair__job"):
        teacher, truth = _teacher_label(p), gold.get(p.pair_id)
        in_gold_keys = translate(p.label, translation)
        off_teacher = teacher is not None and teacher != p.label
        off_gold = truth is not None and in_gold_keys is not None and truth != in_gold_keys
        if {"teacher": off_teacher, "gold": off_gold, "either": off_teacher or off_gold}[against]:
            p.teacher_label, p.gold_label = teacher, truth
            found.append(p)
    return sorted(found, key=lambda p: (p.confidence is None, -(p.confidence or 0), p.line))


def _number(value):
    return None if value is None else round(float(value), 6)


def student_figures(report: StudentReport) -> dict:
    """The report's figures as plain JSON-ready values: per truth its accuracy, confusion matrix (rows: truth,
    columns: the student's label, in ``labels`` order), per-label precision/recall/F1, per-rule accuracy and
    calibration (ECE and the reliability bins; ``n`` 0 when no probabilities were given)."""
    evaluation = report.evaluation
    out = {
        "evaluation": evaluation.pk,
        "purpose": StudentEvaluation.PURPOSE,
        "rules_from": report.rules_from,
        "comparisons": {},
    }
    for c in report.comparisons:
        acc, cal = c.evaluation.accuracy, c.evaluation.calibration
        out["comparisons"][c.key] = {
            "truth": c.truth_name,
            "n": acc.n,
            "correct": acc.correct,
            "accuracy": _number(acc.accuracy),
            "labels": list(acc.labels),
            "confusion": [list(map(int, row)) for row in acc.matrix],
            "per_label": [
                {
                    "label": s.label,
                    "support": s.support,
                    "predicted": s.predicted,
                    "correct": s.correct,
                    "precision": _number(s.precision),
                    "recall": _number(s.recall),
                    "f1": _number(s.f1),
                }
                for s in c.per_label
            ],  # fmt: skip
            "per_rule": [
                {"rule": r.rule, "text": r.text, "n": r.n, "correct": r.correct, "accuracy": _number(r.accuracy)}
                for r in c.evaluation.per_rule
            ],
            "calibration": {
                "n": cal.n,
                "ece": _number(cal.ece),
                "bins": [
                    {
                        "low": _number(b.low),
                        "high": _number(b.high),
                        "n": b.n,
                        "mean_confidence": _number(b.mean_confidence),
                        "accuracy": _number(b.accuracy),
                    }
                    for b in cal.bins
                ],  # fmt: skip
            },
        }
    return out
