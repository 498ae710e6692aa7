"""Reads for labeling runs: lists, the run a user may see, its Label Studio link, routing counts and candidates."""

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from policyhub.roles import POLICY_OWNER, has_role

from ..models import Candidate, LabelingRun, LabelStudioProject, RunChunk
from ..pipeline import chunk as chunk_engine


def run_list(*, limit: int = 50) -> QuerySet[LabelingRun]:
    """Labeling and gold-score runs; a draft preview's runs belong to its page (drafts are the owners' only)."""
    qs = LabelingRun.objects.exclude(purpose=LabelingRun.Purpose.DRAFT_PREVIEW)
    return qs.select_related("policy_version__policy", "teacher_config", "created_by")[:limit]


def run_get(*, pk: int) -> LabelingRun:
    return LabelingRun.objects.select_related("policy_version__policy", "teacher_config", "created_by").get(pk=pk)


def run_visible(*, pk: int, user) -> LabelingRun:
    """The run as ``user`` may see it: a draft preview's runs label an unpublished draft, which is its policy
    owners' only, so to anyone else they do not exist (LabelingRun.DoesNotExist, a 404 in pages and the API)."""
    run = run_get(pk=pk)
    if run.purpose == LabelingRun.Purpose.DRAFT_PREVIEW and not has_role(user, POLICY_OWNER):
        raise LabelingRun.DoesNotExist(f"No run #{pk}.")
    return run


def run_for_key(*, user, key: str) -> LabelingRun | None:
    """The run ``user`` started with this API ``Idempotency-Key`` (None for none, or no key)."""
    if not key or user is None:
        return None
    return LabelingRun.objects.filter(created_by=user, idempotency_key=key[:200]).first()


def run_labelstudio(*, run: LabelingRun) -> LabelStudioProject | None:
    """The run's Label Studio project link with its last push and pull, or None before the first push."""
    return LabelStudioProject.objects.filter(run=run).first()


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


def run_progress_mark(*, run: LabelingRun) -> str:
    """Changes whenever the run writes answers or changes state (what the run page's candidate poll compares)."""
    return f"{run.status}:{run.samples_done + run.samples_failed + run.samples_cached}"


def run_candidates(*, run: LabelingRun, routing: str = "", reason: str = "") -> QuerySet[Candidate]:
    """The run's candidates with only the columns the run page's table (polled while the run is active) and the
    API show: not the members' and jobs' long texts."""
    qs = (
        Candidate.objects.filter(run=run)
        .select_related("pair__member", "pair__job")
        .only(
            "pair__member__external_id", "pair__member__headline", "pair__job__external_id", "pair__job__title",
            "status", "label", "confidence", "vote_share", "label_distribution", "routing", "trust", "injection",
            *(f"reason_{r}" for r in Candidate.REASONS),
        )
        .order_by("id")
    )  # fmt: skip
    if routing:
        qs = qs.filter(routing=routing)
    if reason in Candidate.REASONS:
        qs = qs.filter(**{f"reason_{reason}": True})
    return qs


def run_stuck_chunks(*, run: LabelingRun) -> int:
    """How many chunks a running online run waits for in vain: their worker stopped renewing the lease or, while
    no chunk of the run is held at all, they were queued over a lease ago and never taken (the watchdog re-queues
    them; resume does it at once)."""
    if run.status != LabelingRun.Status.RUNNING or run.mode != LabelingRun.Mode.ONLINE:
        return 0
    now = timezone.now()
    pending = RunChunk.objects.filter(run=run, status=RunChunk.Status.PENDING)
    expired = Q(lease_until__lt=now)
    if not pending.filter(lease_until__gte=now).exists():
        expired |= Q(lease_until__isnull=True, queued_at__lt=now - chunk_engine.lease())
    return pending.filter(expired).count()
