"""Reads for the agreement pages: inter-annotator agreement and teacher-vs-human figures, per run or per version.

The truth for teacher-vs-human is the approved label of every candidate humans decided (``approved_by`` reviewers
or adjudicator); inter-annotator agreement is over annotators' reviews (adjudications are decisions, not ratings).
The statistics themselves are in ``labeling.metrics``.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from policyhub.models import PolicyVersion

from ..evaluation import DEFAULT_TARGET_PRECISION, EvaluationReport, evaluation_figures, evaluation_report
from ..metrics import Judged, PairKappa, cohen_kappa_pairs, krippendorff_alpha
from ..models import Candidate, LabelingRun, Review, TeacherSample


@dataclass(frozen=True)
class AgreementReport:
    version: PolicyVersion
    runs: list[LabelingRun]
    reviews: int  # annotators' reviews (adjudications not included)
    reviewers: list[str]
    items_reviewed: int  # candidates with at least one review
    items_multi: int  # candidates with at least two reviews: what κ and α are computed over
    adjudicated: int
    human_approved: int  # candidates whose approved label came from humans: the truth for the teacher
    kappas: list[PairKappa]
    alpha: float | None
    evaluation: EvaluationReport


def _ratings(runs: QuerySet[LabelingRun]) -> dict[int, dict[str, str]]:
    ratings: dict[int, dict[str, str]] = defaultdict(dict)
    rows = Review.objects.filter(candidate__run__in=runs, kind=Review.Kind.REVIEW).values_list(
        "candidate_id", "reviewer__username", "label"
    )
    for candidate_id, username, label in rows.iterator(chunk_size=5000):
        ratings[candidate_id][username] = label
    return ratings


def _teacher_vs_human(runs: QuerySet[LabelingRun]) -> list[Judged]:
    """One record per human-approved candidate; its cited rules are those of the samples that gave its label."""
    human = Candidate.objects.filter(run__in=runs).human_approved()
    agreeing = TeacherSample.objects.filter(run__in=runs, error_kind="").filter(
        Exists(human.filter(run=OuterRef("run"), pair=OuterRef("pair"), label=OuterRef("label")))
    )
    cited: dict[tuple[int, int], set[str]] = defaultdict(set)
    for run_id, pair_id, rules in agreeing.values_list("run_id", "pair_id", "cited_rules").iterator(chunk_size=5000):
        cited[run_id, pair_id].update(rules or ())
    rows = human.values_list("run_id", "pair_id", "label", "approved_label", "confidence")
    return [
        Judged(label, approved, confidence, tuple(sorted(cited.get((run_id, pair_id), ()))))
        for run_id, pair_id, label, approved, confidence in rows.iterator(chunk_size=5000)
    ]


def _report(*, version: PolicyVersion, runs: QuerySet[LabelingRun], target_precision: float) -> AgreementReport:
    ratings = _ratings(runs)
    judged = _teacher_vs_human(runs)
    return AgreementReport(
        version=version,
        runs=list(runs.select_related("teacher_config").order_by("pk")),
        reviews=sum(len(votes) for votes in ratings.values()),
        reviewers=sorted({rater for votes in ratings.values() for rater in votes}),
        items_reviewed=len(ratings),
        items_multi=sum(len(votes) >= 2 for votes in ratings.values()),
        adjudicated=Review.objects.filter(candidate__run__in=runs, kind=Review.Kind.ADJUDICATION).count(),
        human_approved=len(judged),
        kappas=cohen_kappa_pairs(ratings),
        alpha=krippendorff_alpha(ratings, version.label_keys),
        evaluation=evaluation_report(judged, version=version, target_precision=target_precision),
    )


def runs_agreement(
    *, version: PolicyVersion, runs: QuerySet[LabelingRun], target_precision: float = DEFAULT_TARGET_PRECISION
) -> AgreementReport:
    """Over the given runs of one version (what a dataset export quotes)."""
    return _report(version=version, runs=runs, target_precision=target_precision)


def run_agreement(*, run: LabelingRun, target_precision: float = DEFAULT_TARGET_PRECISION) -> AgreementReport:
    return _report(
        version=run.policy_version, runs=LabelingRun.objects.filter(pk=run.pk), target_precision=target_precision
    )


def version_agreement(*, version: PolicyVersion, target_precision: float = DEFAULT_TARGET_PRECISION) -> AgreementReport:
    """Over every labeling run of the version (two runs reviewing the same pair count as two items); gold scores
    and draft previews are evaluations, not labeling, and are left out."""
    runs = LabelingRun.objects.filter(policy_version=version, purpose=LabelingRun.Purpose.LABELING)
    return _report(version=version, runs=runs, target_precision=target_precision)


def agreement_figures(report: AgreementReport) -> dict:
    """The report as plain JSON-able figures (the API's answer, and what dataset cards quote)."""
    return {
        "policy": report.version.policy.slug,
        "version": report.version.number,
        "runs": [run.pk for run in report.runs],
        "reviews": report.reviews,
        "reviewers": report.reviewers,
        "items_reviewed": report.items_reviewed,
        "items_multi": report.items_multi,
        "adjudicated": report.adjudicated,
        "human_approved": report.human_approved,
        "krippendorff_alpha": report.alpha,
        "cohen_kappa": [
            {"annotators": [k.rater_a, k.rater_b], "items": k.n, "observed": k.observed, "kappa": k.kappa}
            for k in report.kappas
        ],
        "teacher_vs_human": evaluation_figures(report.evaluation),
    }
