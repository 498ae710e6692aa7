"""Reads for labeling runs: lists, the run a user may see, its Label Studio link, routing counts, candidates and
the run's timeline (pairs decided and routed over time, with its charts)."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Count, DateTimeField, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Trunc
from django.utils import timezone

from policyhub import charts
from policyhub.roles import POLICY_OWNER, has_role

from ..models import Candidate, LabelingRun, LabelStudioProject, RunChunk, TeacherSample
from ..pipeline import chunk as chunk_engine


def run_list(*, limit: int = 50) -> QuerySet[LabelingRun]:
    """Labeling and gold-score runs; a draft preview's runs belong to its page (drafts are the owners' only), a
    red-team run's parts to its report."""
    qs = LabelingRun.objects.exclude(purpose__in=[LabelingRun.Purpose.DRAFT_PREVIEW, LabelingRun.Purpose.RED_TEAM])
    return qs.select_related("policy_version__policy", "teacher_config", "created_by")[:limit]


def run_get(*, pk: int) -> LabelingRun:
    return LabelingRun.objects.select_related("policy_version__policy", "teacher_config", "created_by").get(pk=pk)


def run_visible(*, pk: int, user) -> LabelingRun:
    """The run as ``user`` may see it: a draft preview's runs label an unpublished draft, which is its policy
    owners' only (a red-team run's parts on a draft too), so to anyone else they do not exist (LabelingRun.DoesNotExist,
    a 404 in pages and the API)."""
    run = run_get(pk=pk)
    on_draft = run.purpose == LabelingRun.Purpose.DRAFT_PREVIEW or (
        run.purpose == LabelingRun.Purpose.RED_TEAM and run.red_team_run.on_draft
    )
    if on_draft and not has_role(user, POLICY_OWNER):
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


CANDIDATES_PER_PAGE = 50


@dataclass
class CandidatePage:
    """One page of a run's candidate table, read by id (keyset): as fast at the millionth candidate as at the first,
    where an ``OFFSET`` reads and drops every row before it."""

    items: list[Candidate]
    total: int  # candidates of the tab and filter
    after: int | None  # the cursor it was read with (``after`` or ``before`` a candidate id), for the poll
    before: int | None
    has_previous: bool
    has_next: bool

    @property
    def first_id(self) -> int | None:
        return self.items[0].pk if self.items else None

    @property
    def last_id(self) -> int | None:
        return self.items[-1].pk if self.items else None


def run_candidates_page(
    *, run: LabelingRun, routing: str = "", reason: str = "", after: int | None = None, before: int | None = None,
    size: int = CANDIDATES_PER_PAGE,
) -> CandidatePage:  # fmt: skip
    """The ``size`` candidates after the id ``after`` (or before ``before``; else the first ones), in id order."""
    qs = run_candidates(run=run, routing=routing, reason=reason)
    if before is not None:
        items = list(qs.filter(id__lt=before).order_by("-id")[:size])[::-1]
    elif after is not None:
        items = list(qs.filter(id__gt=after)[:size])
    else:
        items = list(qs[:size])
    ids = qs.order_by().values("id")
    if items:  # two index probes: is there anything either side of this page?
        has_previous = ids.filter(id__lt=items[0].pk).exists()
        has_next = ids.filter(id__gt=items[-1].pk).exists()
    else:  # read past an end: offer the way back
        has_previous, has_next = after is not None, before is not None
    return CandidatePage(
        items=items, total=qs.order_by().count(), after=after, before=before, has_previous=has_previous,
        has_next=has_next,
    )  # fmt: skip


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


# --- the run's timeline ----------------------------------------------------------------------------------------
#: (unit, longest span it is used for, step, label format): at most about 300 buckets whatever the run's length
_UNITS = (
    ("second", timedelta(minutes=5), timedelta(seconds=1), "%H:%M:%S"),
    ("minute", timedelta(hours=5), timedelta(minutes=1), "%H:%M"),
    ("hour", timedelta(days=10), timedelta(hours=1), "%m-%d %H:00"),
    ("day", None, timedelta(days=1), "%Y-%m-%d"),
)
_ROUTED = {
    "auto_accepted": Q(status=Candidate.Status.LABELED, routing=Candidate.Routing.AUTO_ACCEPTED),
    "needs_review": Q(status=Candidate.Status.LABELED, routing=Candidate.Routing.NEEDS_REVIEW),
    "failed": Q(status=Candidate.Status.FAILED),
}


@dataclass(frozen=True)
class RunTimeline:
    """Pairs decided per time bucket (UTC), from the bucket before the first answer (nothing decided yet, so the
    progress line starts at zero) to the last answer, empty buckets included. A pair is
    decided when its last answer was stored (the chunk's write that also routed it). Each bucket: ``at`` (label),
    ``auto_accepted``, ``needs_review``, ``failed`` (pairs), ``reason_<r>`` (pairs routed with reason r; one pair
    may have several) and the running totals ``labeled_total`` and ``failed_total``."""

    unit: str
    buckets: list[dict]


_BUCKET_COUNTS = {
    "auto_accepted": "c.status = 'labeled' AND c.routing = 'auto_accepted'",
    "needs_review": "c.status = 'labeled' AND c.routing = 'needs_review'",
    "failed": "c.status = 'failed'",  # the same conditions as _ROUTED
    **{f"reason_{r}": f"c.reason_{r}" for r in Candidate.REASONS},
}


def _decided_per_bucket(run: LabelingRun, unit: str) -> list[dict]:
    """The run's decided candidates counted per bucket of their decision time (their last sample's), in one pass:
    the samples grouped by pair and joined with the candidates (a subquery per candidate took seconds at a
    million). Buckets are truncated in the current time zone, as Django's ``Trunc`` does."""
    if connection.vendor != "postgresql":
        return _decided_per_bucket_per_row(run, unit)
    zone = timezone.get_current_timezone_name()
    counts = ", ".join(f"count(*) FILTER (WHERE {condition}) AS {name}" for name, condition in _BUCKET_COUNTS.items())
    sql = f"""
        SELECT date_trunc(%s, s.last AT TIME ZONE %s) AS at, {counts}
        FROM labeling_candidate c
        JOIN (SELECT pair_id, max(created_at) AS last FROM labeling_teachersample WHERE run_id = %s GROUP BY pair_id) s
          ON s.pair_id = c.pair_id
        WHERE c.run_id = %s AND c.status <> 'pending'
        GROUP BY 1 ORDER BY 1
    """  # noqa: S608 - the columns are this module's constants
    with connection.cursor() as cursor:
        cursor.execute(sql, [unit, zone, run.pk, run.pk])
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    tz = timezone.get_current_timezone()
    for row in rows:
        row["at"] = timezone.make_aware(row["at"], tz) if row["at"] is not None else None
    return rows


def _decided_per_bucket_per_row(run: LabelingRun, unit: str) -> list[dict]:
    """The same counts with a subquery per candidate (SQLite, the embedded default: small runs)."""
    decided = Subquery(
        TeacherSample.objects.filter(run_id=OuterRef("run_id"), pair_id=OuterRef("pair_id"))
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    counts = {name: Count("id", filter=condition) for name, condition in _ROUTED.items()}
    counts |= {f"reason_{r}": Count("id", filter=Q(**{f"reason_{r}": True})) for r in Candidate.REASONS}
    return list(
        Candidate.objects.filter(run=run)
        .exclude(status=Candidate.Status.PENDING)
        .annotate(at=Trunc(decided, unit, output_field=DateTimeField()))
        .values("at")
        .annotate(**counts)
        .order_by("at")
    )


def run_timeline(*, run: LabelingRun) -> RunTimeline:
    """Two queries: the span of the run's answers, then its decided candidates grouped by time bucket.
    PostgreSQL only (as the app's production database; the embedded SQLite default keeps the per-row form)."""
    span = TeacherSample.objects.filter(run=run).aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["first"] is None:
        return RunTimeline("minute", [])
    unit, _longest, step, fmt = next(u for u in _UNITS if u[1] is None or span["last"] - span["first"] <= u[1])
    rows = _decided_per_bucket(run, unit)
    found = {row.pop("at"): row for row in rows if row["at"] is not None}
    zero = dict.fromkeys(_BUCKET_COUNTS, 0)
    start = min(found, default=None) or span["first"]
    end = max(found, default=start)
    buckets, at, labeled, failed = [], start - step, 0, 0
    while at <= end:
        row = found.get(at, zero)
        labeled += row["auto_accepted"] + row["needs_review"]
        failed += row["failed"]
        buckets.append({"at": at.strftime(fmt), **row, "labeled_total": labeled, "failed_total": failed})
        at += step
    return RunTimeline(unit, buckets)


def run_timeline_charts(timeline: RunTimeline, *, pairs_total: int) -> list[charts.Chart]:
    """The run page's charts: progress (pairs decided so far), routing per bucket and review reasons per bucket;
    none before the first answer."""
    if not timeline.buckets:
        return []
    per = f"per {timeline.unit}"
    x_title = f"Time (UTC, {per})"
    reasons = [(f"reason_{r}", r) for r in Candidate.REASONS]
    return [
        charts.line_trends(
            timeline.buckets, name="run-progress", title=f"Progress: pairs decided of {pairs_total}", x="at",
            x_title=x_title, series=[("labeled_total", "labelled"), ("failed_total", "failed")], y_title="Pairs",
            digits=0, y_domain=[0, max(pairs_total, 1)],
            description=f"Running totals of the run's pairs labelled and failed over time ({per}), out of "
            f"{pairs_total} pairs.",
        ),
        charts.stacked_bars(
            timeline.buckets, name="run-routing", title=f"Routing of the pairs decided {per}", x="at",
            x_title=x_title, y_title="Pairs",
            categories=[("auto_accepted", "auto-accepted"), ("needs_review", "needs review"), ("failed", "failed")],
            description=f"Pairs decided {per}, stacked by outcome: auto-accepted, routed to review, failed.",
        ),
        charts.line_trends(
            timeline.buckets, name="run-reasons", title=f"Review reasons {per}", x="at", x_title=x_title,
            series=reasons, y_title="Pairs", digits=0,
            description=f"Pairs routed to review {per}, one line per reason (a pair may have several reasons).",
        ),
    ]  # fmt: skip


# --- a finished run's page figures, kept (labeling.services.figures) ----------------------------------------------
def run_page_figures(*, run: LabelingRun) -> dict:
    """The run page's counts, trust rates and timeline, computed from scratch, as JSON."""
    from .costs import run_labelled
    from .trust_rates import run_trust_rates

    summary = run_routing_summary(run=run)
    timeline = run_timeline(run=run)
    return {
        "size": summary["pending"] + summary["labeled"] + summary["failed"],
        "summary": summary,
        "labelled": run_labelled(run=run),
        "trust": run_trust_rates(run=run).counts,
        "timeline": {"unit": timeline.unit, "buckets": timeline.buckets},
    }


@dataclass(frozen=True)
class RunPage:
    summary: dict
    trust: object  # trust_rates.TrustRates
    timeline: RunTimeline
    labelled: int  # candidates holding a teacher label (the cost per 1,000 pairs)
    computed_at: object = None
    stale: bool = False


def run_page_from_snapshot(snapshot) -> RunPage:
    from .trust_rates import TrustRates

    f = snapshot.figures
    timeline = RunTimeline(f["timeline"]["unit"], f["timeline"]["buckets"])
    return RunPage(f["summary"], TrustRates(f["trust"]), timeline, f["labelled"], snapshot.computed_at, snapshot.stale)


def run_page_live(*, run: LabelingRun) -> RunPage:
    from .costs import run_labelled
    from .trust_rates import run_trust_rates

    summary, trust = run_routing_summary(run=run), run_trust_rates(run=run)
    return RunPage(summary, trust, run_timeline(run=run), run_labelled(run=run))
