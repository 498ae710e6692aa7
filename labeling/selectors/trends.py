"""A policy's figures version by version (the trends page): accuracy on the gold set, agreement with humans,
trust-check rates and cost per 1,000 labelled pairs, each worked out by the selector its own page uses, so a
version's point on a chart is the number that version's pages state.

* **gold accuracy** — of the gold pairs the version's labeling and gold-score runs labelled, the share whose teacher
  label is the pair's gold label now (``gold.runs_on_gold``, what *Scores on the gold set* lists per run);
* **teacher vs humans** and **Krippendorff's α** — the figures of ``agreement.version_agreement`` (the version's
  agreement page), in grouped SQL (``agreement.versions_agreement_summary``);
* **trust rates** — the version's total of ``trust_rates`` (its labeling runs; the version page's rates);
* **cost per 1,000 labelled pairs** — ``costs.versions_costs`` over its labeling runs.
"""

from dataclasses import dataclass

from policyhub import charts
from policyhub.models import Policy, PolicyVersion

from ..models import LabelingRun
from .agreement import VersionAgreementSummary, versions_agreement_summary
from .costs import VersionCosts, versions_costs
from .gold import runs_on_gold
from .trust_rates import RATES, TrustRates, runs_trust_rates, total_rates

#: trust rates charted, in the order of ``trust_rates.RATES``, with their titles
RATE_TITLES = {
    "hallucination": "hallucination",
    "injection": "injection in the data",
    "injection_followed": "injection followed",
    "tone": "tone",
    "judge": "judge said no",
    "any_check": "any check failed",
}


@dataclass(frozen=True)
class VersionTrend:
    version: PolicyVersion
    gold_items: int
    gold_correct: int
    human_items: int  # items with a human-approved label (teacher vs humans)
    human_accuracy: float | None
    alpha: float | None
    trust: TrustRates
    costs: VersionCosts

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_items if self.gold_items else None

    def row(self) -> dict:
        """The version's figures by chart field (rates as fractions, cost in dollars)."""
        rates = {name: (rate.rate if (rate := getattr(self.trust, name)) else None) for name in RATES}
        per_1000 = self.costs.per_1000_pairs
        return {
            "version": f"v{self.version.number}",
            "gold_accuracy": self.gold_accuracy,
            "human_accuracy": self.human_accuracy,
            "alpha": self.alpha,
            **rates,
            "cost_per_1000": None if per_1000 is None else float(per_1000),
        }


def policy_trends(*, policy: Policy, agreement_of=None, trust_of=None, labelled_of=None) -> list[VersionTrend]:
    """Every released (published or retired) version of the policy, oldest first, in a number of grouped queries
    that does not grow with the runs, reviews or versions. ``agreement_of(version)`` (an ``AgreementReport``) and
    ``trust_of(run ids)`` give a version's agreement and its runs' trust rates, ``labelled_of(run ids)`` {run id:
    labelled pairs}: the page passes the kept figures of ``labeling.services.figures``; by default they are computed
    here (agreement in grouped SQL)."""
    trust_of = trust_of or (lambda run_ids: runs_trust_rates(run_ids=run_ids))
    versions = list(policy.versions.exclude(status=PolicyVersion.Status.DRAFT).order_by("number"))
    gold: dict[int, list[int]] = {v.pk: [0, 0] for v in versions}
    for score in runs_on_gold(policy=policy):
        if score.run.policy_version_id in gold:
            gold[score.run.policy_version_id][0] += score.n
            gold[score.run.policy_version_id][1] += score.correct
    labeling = list(
        LabelingRun.objects.filter(policy_version__in=versions, purpose=LabelingRun.Purpose.LABELING).values_list(
            "pk", "policy_version_id"
        )
    )
    by_run = trust_of([pk for pk, _ in labeling])
    labelled = None
    if labelled_of is not None:
        labelled = dict.fromkeys((v.pk for v in versions), 0)
        per_run = labelled_of([pk for pk, _ in labeling])
        for pk, version_id in labeling:
            labelled[version_id] += per_run[pk]
    costs = versions_costs(version_ids=[v.pk for v in versions], labelled=labelled)
    if agreement_of is None:
        agreement = versions_agreement_summary(version_ids=[v.pk for v in versions])
    else:
        agreement = {v.pk: _summary(agreement_of(v)) for v in versions}
    trends = []
    for version in versions:
        trends.append(
            VersionTrend(
                version=version,
                gold_items=gold[version.pk][0],
                gold_correct=gold[version.pk][1],
                human_items=agreement[version.pk].human_items,
                human_accuracy=agreement[version.pk].human_accuracy,
                alpha=agreement[version.pk].alpha,
                trust=total_rates(by_run[pk] for pk, v in labeling if v == version.pk),
                costs=costs[version.pk],
            )
        )
    return trends


def _summary(report) -> VersionAgreementSummary:
    accuracy = report.evaluation.accuracy
    return VersionAgreementSummary(human_items=accuracy.n, human_correct=accuracy.correct, alpha=report.alpha)


def trend_charts(trends: list[VersionTrend]) -> list[charts.Chart]:
    rows = [t.row() for t in trends]
    return [
        charts.line_trends(
            rows, name="trend-accuracy", title="Accuracy and agreement per version", x="version", x_title="Version",
            series=[("gold_accuracy", "accuracy on gold"), ("human_accuracy", "teacher vs humans"),
                    ("alpha", "Krippendorff's α (annotators)")],
            y_title="Share / α",
            description="Per released version: the teacher's accuracy on the gold set and against human-approved "
            "labels, and the annotators' agreement (Krippendorff's α).",
        ),
        charts.line_trends(
            rows, name="trend-trust", title="Trust-check rates per version", x="version", x_title="Version",
            series=list(RATE_TITLES.items()), y_title="Share of candidates", y_domain=[0, 1],
            description="Per released version: the share of its labeling runs' candidates failing each trust check.",
        ),
        charts.line_trends(
            rows, name="trend-cost", title="Cost per 1,000 labelled pairs per version", x="version", x_title="Version",
            series=[("cost_per_1000", "cost per 1,000 labelled pairs ($)")], y_title="Dollars", digits=4,
            description="Per released version: what its labeling runs paid (teacher and judge) per 1,000 labelled "
            "pairs.",
        ),
    ]  # fmt: skip
