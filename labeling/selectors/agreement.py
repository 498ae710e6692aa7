"""Reads for the agreement pages: inter-annotator agreement and teacher-vs-human figures, per run or per version.

The truth for teacher-vs-human is the approved label of every candidate humans decided (``approved_by`` reviewers
or adjudicator); inter-annotator agreement is over annotators' reviews (adjudications are decisions, not ratings).
The statistics themselves are in ``labeling.metrics``.
"""

from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from policyhub.models import PolicyVersion

from ..evaluation import (
    DEFAULT_TARGET_PRECISION,
    EvaluationReport,
    RuleRow,
    evaluation_figures,
    evaluation_report,
)
from ..metrics import (
    AccuracyReport,
    Calibration,
    CalibrationBin,
    Judged,
    PairKappa,
    cohen_kappa_pairs,
    confidence_counts,
    krippendorff_alpha,
    threshold_for_precision_counts,
)
from ..models import Candidate, FiguresSnapshot, LabelingRun, Review, TeacherSample


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
    computed_at: datetime | None = None  # from a FiguresSnapshot: the figures are exact as of then
    stale: bool = False  # … and inputs changed since (a refresh is queued)


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
    # fetched whole, not through a server-side cursor: planned for its first rows, the semi-join ran from the
    # samples' side (a million of them) and took minutes; planned whole, it starts from the few humans decided
    for run_id, pair_id, rules in agreeing.values_list("run_id", "pair_id", "cited_rules"):
        cited[run_id, pair_id].update(rules or ())
    rows = human.values_list("run_id", "pair_id", "label", "approved_label", "confidence")
    return [
        Judged(label, approved, confidence, tuple(sorted(cited.get((run_id, pair_id), ()))))
        for run_id, pair_id, label, approved, confidence in rows.iterator(chunk_size=5000)
    ]


def _report(*, version: PolicyVersion, runs: QuerySet[LabelingRun], target_precision: float) -> AgreementReport:
    return _report_and_judged(version=version, runs=runs, target_precision=target_precision)[0]


def _report_and_judged(
    *, version: PolicyVersion, runs: QuerySet[LabelingRun], target_precision: float
) -> tuple[AgreementReport, list[Judged]]:
    ratings = _ratings(runs)
    judged = _teacher_vs_human(runs)
    report = AgreementReport(
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
    return report, judged


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
    """The report as plain JSON-able figures (the API's answer, and what dataset cards quote); from a snapshot,
    also when it was computed and whether a refresh is on its way."""
    kept = {"computed_at": report.computed_at.isoformat(), "stale": report.stale} if report.computed_at else {}
    return kept | {
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


# --- per version, in grouped SQL (the trends page) ---------------------------------------------------------------
@dataclass(frozen=True)
class VersionAgreementSummary:
    """The version-agreement figures the trends page charts, without the rest of the report."""

    human_items: int  # human-approved candidates of the version's labeling runs
    human_correct: int  # of them, those whose teacher label is the approved one
    alpha: float | None  # Krippendorff's α (nominal) over the annotators' reviews, as ``krippendorff_alpha``

    @property
    def human_accuracy(self) -> float | None:
        return self.human_correct / self.human_items if self.human_items else None


_VOTES = """
WITH votes AS (
    SELECT lr.policy_version_id AS version, r.candidate_id AS item, r.label AS label
    FROM {review} r JOIN {candidate} c ON c.id = r.candidate_id JOIN {run} lr ON lr.id = c.run_id
    WHERE r.kind = %s AND lr.purpose = %s AND lr.policy_version_id IN ({versions})
), pairable AS (
    SELECT item FROM votes GROUP BY item HAVING COUNT(*) >= 2
), cells AS (
    SELECT v.version, v.item, v.label, COUNT(*) AS n FROM votes v JOIN pairable p ON p.item = v.item
    GROUP BY v.version, v.item, v.label
)
"""
#: per version: n (pairable ratings) and the observed disagreement's sum over items of (m² − Σ n_c²) / (m − 1)
_UNITS = """, units AS (SELECT version, item, SUM(n) AS m, SUM(n * n) AS sq FROM cells GROUP BY version, item)
SELECT version, SUM(m), SUM((m * m - sq) * 1.0 / (m - 1)) FROM units GROUP BY version"""
#: per version and label: how many pairable ratings gave it
_LABELS = "SELECT version, label, SUM(n) FROM cells GROUP BY version, label"


def _alphas(version_ids: list[int]) -> dict[int, float | None]:
    """Krippendorff's α (nominal) per version from its coincidence counts, in two grouped queries:
    α = 1 − (n − 1) · Σ_items (m² − Σ_c n_c²)/(m − 1) / (n² − Σ_c n_c²), over the items at least two annotators
    reviewed (m ratings, n_c of them label c; n ratings in all). None where undefined, as ``krippendorff_alpha``."""
    if not version_ids:
        return {}
    sql = _VOTES.format(
        review=Review._meta.db_table, candidate=Candidate._meta.db_table, run=LabelingRun._meta.db_table,
        versions=", ".join(["%s"] * len(version_ids)),
    )  # fmt: skip
    params = [Review.Kind.REVIEW, LabelingRun.Purpose.LABELING, *version_ids]
    with connection.cursor() as cursor:
        cursor.execute(sql + _UNITS, params)
        units = {version: (int(n), float(observed)) for version, n, observed in cursor.fetchall()}
        cursor.execute(sql + _LABELS, params)
        squares: dict[int, int] = defaultdict(int)
        for version, _label, n_c in cursor.fetchall():
            squares[version] += int(n_c) ** 2
    alphas: dict[int, float | None] = dict.fromkeys(version_ids)
    for version, (n, observed) in units.items():
        expected = n * n - squares[version]
        alphas[version] = 1 - (n - 1) * observed / expected if expected else None
    return alphas


def versions_agreement_summary(*, version_ids: list[int]) -> dict[int, VersionAgreementSummary]:
    """{version id: teacher vs humans and α over its labeling runs} in three grouped queries, however many runs
    and reviews there are: the figures ``version_agreement`` reports, for the trends page."""
    human = (
        Candidate.objects.filter(run__policy_version_id__in=version_ids, run__purpose=LabelingRun.Purpose.LABELING)
        .human_approved()
        .values("run__policy_version_id")
        .annotate(n=Count("id"), correct=Count("id", filter=Q(label=F("approved_label"))))
        .order_by()
    )
    counts = {row["run__policy_version_id"]: (row["n"], row["correct"]) for row in human}
    alphas = _alphas(version_ids)
    return {pk: VersionAgreementSummary(*counts.get(pk, (0, 0)), alphas[pk]) for pk in version_ids}


# --- precomputed: the same figures kept in a FiguresSnapshot (labeling.services.figures computes and stores) ------
def scope_runs(snapshot_kind: str, *, run: LabelingRun | None = None, version: PolicyVersion | None = None):
    """The runs a snapshot's figures are over: the run, or every labeling run of the version."""
    if snapshot_kind == FiguresSnapshot.Kind.RUN_AGREEMENT:
        return run.policy_version, LabelingRun.objects.filter(pk=run.pk)
    return version, LabelingRun.objects.filter(policy_version=version, purpose=LabelingRun.Purpose.LABELING)


def snapshot_figures(*, version: PolicyVersion, runs: QuerySet[LabelingRun]) -> dict:
    """Everything the agreement page and API show, computed from scratch, as JSON: the report at the default
    target precision plus the confidence counts the threshold for any other target is found from."""
    report, judged = _report_and_judged(version=version, runs=runs, target_precision=DEFAULT_TARGET_PRECISION)
    evaluation = report.evaluation
    return {
        "size": report.reviews + report.human_approved,  # what it costs to compute again
        "runs": [run.pk for run in report.runs],
        **{key: getattr(report, key) for key in _COUNTS},
        "kappas": [asdict(k) for k in report.kappas],
        "alpha": report.alpha,
        "accuracy": asdict(evaluation.accuracy),
        "per_rule": [asdict(row) for row in evaluation.per_rule],
        "calibration": {"n": evaluation.calibration.n, "ece": evaluation.calibration.ece,
                        "bins": [asdict(b) for b in evaluation.calibration.bins]},
        "confidence_counts": confidence_counts(judged),
    }  # fmt: skip


_COUNTS = ("reviews", "reviewers", "items_reviewed", "items_multi", "adjudicated", "human_approved")


def snapshot_report(
    snapshot: FiguresSnapshot, *, version: PolicyVersion, target_precision: float = DEFAULT_TARGET_PRECISION
) -> AgreementReport:
    """The :class:`AgreementReport` a snapshot holds, with the threshold for ``target_precision``."""
    f = snapshot.figures
    runs = LabelingRun.objects.filter(pk__in=f["runs"]).select_related("teacher_config").order_by("pk")
    evaluation = EvaluationReport(
        accuracy=AccuracyReport(**f["accuracy"]),
        per_rule=[RuleRow(**row) for row in f["per_rule"]],
        calibration=Calibration(
            f["calibration"]["n"], [CalibrationBin(**b) for b in f["calibration"]["bins"]], f["calibration"]["ece"]
        ),
        threshold=threshold_for_precision_counts([tuple(c) for c in f["confidence_counts"]], target=target_precision),
    )
    report = AgreementReport(
        version=version, runs=list(runs), **{key: f[key] for key in _COUNTS},
        kappas=[PairKappa(**k) for k in f["kappas"]], alpha=f["alpha"], evaluation=evaluation,
    )  # fmt: skip
    return replace(report, computed_at=snapshot.computed_at, stale=snapshot.stale)
