"""Reads of the labeling app."""

from django.db.models import Count, Q, QuerySet

from .models import Candidate, ImportBatch, Job, LabelingRun, Member, Pair, TeacherConfig


def import_batch_list(*, limit: int = 50, with_errors: bool = False) -> QuerySet[ImportBatch]:
    qs = ImportBatch.objects.select_related("created_by")
    return (qs if with_errors else qs.defer("errors"))[:limit]


def import_batch_get(*, pk: int) -> ImportBatch:
    return ImportBatch.objects.select_related("created_by").get(pk=pk)


def dataset_counts() -> dict[str, int]:
    return {"members": Member.objects.count(), "jobs": Job.objects.count(), "pairs": Pair.objects.count()}


def teacher_config_list() -> QuerySet[TeacherConfig]:
    return TeacherConfig.objects.all()


def run_list(*, limit: int = 50) -> QuerySet[LabelingRun]:
    return LabelingRun.objects.select_related("policy_version__policy", "teacher_config", "created_by")[:limit]


def run_get(*, pk: int) -> LabelingRun:
    return LabelingRun.objects.select_related("policy_version__policy", "teacher_config", "created_by").get(pk=pk)


def run_routing_summary(*, run: LabelingRun) -> dict:
    """Counts for the run page: candidates by status and routing, pairs per review reason, trust failure rates."""
    candidates = Candidate.objects.filter(run=run)
    labeled = Q(status=Candidate.Status.LABELED)
    aggregates = {
        "pending": Count("id", filter=Q(status=Candidate.Status.PENDING)),
        "labeled": Count("id", filter=labeled),
        "failed": Count("id", filter=Q(status=Candidate.Status.FAILED)),
        "auto_accepted": Count("id", filter=Q(routing=Candidate.Routing.AUTO_ACCEPTED)),
        "needs_review": Count("id", filter=Q(routing=Candidate.Routing.NEEDS_REVIEW)),
        "trust_failed": Count("id", filter=labeled & Q(trust_ok=False)),
        "hallucinated": Count("id", filter=labeled & Q(trust__facts_grounded__ok=False)),
        **{f"reason_{r}": Count("id", filter=Q(**{f"reason_{r}": True})) for r in Candidate.REASONS},
    }
    counts = candidates.aggregate(**aggregates)
    done = counts["labeled"] or 0
    return {
        **counts,
        "reasons": {r: counts[f"reason_{r}"] for r in Candidate.REASONS},
        "trust_failure_rate": (counts["trust_failed"] / done) if done else None,
        "hallucination_rate": (counts["hallucinated"] / done) if done else None,
    }


def run_candidates(*, run: LabelingRun, routing: str = "", reason: str = "") -> QuerySet[Candidate]:
    qs = Candidate.objects.filter(run=run).select_related("pair__member", "pair__job").order_by("id")
    if routing:
        qs = qs.filter(routing=routing)
    if reason in Candidate.REASONS:
        qs = qs.filter(**{f"reason_{reason}": True})
    return qs
