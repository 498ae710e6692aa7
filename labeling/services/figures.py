"""Precomputed figures (``FiguresSnapshot``): computed from scratch by the selectors, marked stale by every write
that changes their inputs (in that write's transaction), refreshed by a task queued after it commits.

A refresh first clears ``stale`` (waiting for any write holding the snapshot's row, see
:func:`figures_mark_stale`) and then reads, so a write either committed before the read (and is in the figures) or
marks the snapshot stale again and queues the next refresh: the figures are those of the data as of
``computed_at``, and a page says when newer changes are on their way.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from policyhub.models import PolicyVersion
from policyhub.queueing import enqueue, enqueue_each

from ..models import FiguresSnapshot, LabelingRun
from ..selectors import agreement, feedback
from ..selectors import runs as runs_selectors

REFRESH_TASK = "labeling.tasks.figures_refresh"
KEEP_TASK = "labeling.tasks.figures_keep_run"
#: The watchdog computes the run-page figures of runs that ended this recently and have none (a lost message);
#: an older run never viewed gets them on its first view, as before.
KEEP_ENDED_WITHIN = timedelta(hours=1)
#: Below this many reviews and human-approved items a stale snapshot is computed again on the page itself (a
#: fraction of the 300 ms a page may take), so a small installation never shows figures behind its reviews.
INLINE_REFRESH_BELOW = 20_000
#: A running run with fewer pairs has its page read live. A larger one has its page's figures kept from its start
#: and computed again on a worker while it writes answers, at most every ``RUN_FIGURES_REFRESH_SECONDS`` and never
#: sooner than REFRESH_LOAD times as long as the last computation took (scans of its candidates take at most a
#: quarter of a database core, however large the run).
LIVE_RUN_BELOW = INLINE_REFRESH_BELOW
REFRESH_LOAD = 4


#: The figures over reviews (what a review, undo or adjudication changes): the agreement, and the draft editor's
#: per-rule override counts.
AGREEMENT = (
    FiguresSnapshot.Kind.RUN_AGREEMENT,
    FiguresSnapshot.Kind.VERSION_AGREEMENT,
    FiguresSnapshot.Kind.VERSION_RULES,
)
ALL_KINDS = tuple(FiguresSnapshot.Kind)
#: The figures over a run's candidates (what its answers change).
RUN_PAGE = (FiguresSnapshot.Kind.RUN_PAGE,)
#: Kinds kept per version: over every labeling run of the version.
VERSION_KINDS = (FiguresSnapshot.Kind.VERSION_AGREEMENT, FiguresSnapshot.Kind.VERSION_RULES)


def figures_mark_stale(*, run_ids, kinds=ALL_KINDS) -> int:
    """The runs' reviews, approvals or answers changed (or a run was added to its version): mark the figures over
    them (of ``kinds``: a review changes the agreement, not the run page) stale and queue their refresh (a running
    run's page figures: once they are old enough, see LIVE_RUN_BELOW). Call it last in the writing transaction:
    it locks the snapshots' rows until the write commits, so a refresh that starts meanwhile reads only after the
    write is in (a snapshot already stale is locked, not written, and gets no second refresh)."""
    run_ids = list(run_ids)
    versions = LabelingRun.objects.filter(pk__in=run_ids, purpose=LabelingRun.Purpose.LABELING).values(
        "policy_version_id"
    )
    scope = Q(run_id__in=run_ids) | Q(kind__in=VERSION_KINDS, version_id__in=versions)
    rows = FiguresSnapshot.objects.filter(scope, kind__in=kinds).select_for_update(no_key=True).order_by("pk")
    fresh = [row for row in rows.values_list("pk", "stale", "kind", "run_id", "computed_at", "seconds") if not row[1]]
    if not fresh:
        return 0
    FiguresSnapshot.objects.filter(pk__in=[row[0] for row in fresh]).update(stale=True)
    running = _running({row[3] for row in fresh if row[2] == FiguresSnapshot.Kind.RUN_PAGE})
    now, now_pks = timezone.now(), []
    for pk, _stale, _kind, run_id, computed_at, seconds in fresh:
        wait = _refresh_wait(computed_at, seconds, now) if run_id in running else 0
        if wait > 0:
            enqueue(REFRESH_TASK, pk, countdown=wait)
        else:
            now_pks.append((pk,))
    enqueue_each(REFRESH_TASK, now_pks)
    return len(fresh)


def _running(run_ids) -> set[int]:
    if not run_ids:
        return set()
    active = [LabelingRun.Status.QUEUED, LabelingRun.Status.RUNNING]
    return set(LabelingRun.objects.filter(pk__in=run_ids, status__in=active).values_list("pk", flat=True))


def _refresh_wait(computed_at, seconds: float, now) -> float:
    """Seconds until a running run's page figures computed at ``computed_at`` (in ``seconds``) are due again."""
    every = max(settings.RUN_FIGURES_REFRESH_SECONDS, REFRESH_LOAD * seconds)
    return max(0.0, every - (now - computed_at).total_seconds())


def read_live(run: LabelingRun) -> bool:
    """A running run small enough for its page to count its candidates on every view (see LIVE_RUN_BELOW)."""
    return run.is_active and run.pairs_total < LIVE_RUN_BELOW


def figures_keep_started(*, run: LabelingRun) -> None:
    """A run just created with its candidates: keep its page's figures from the start if it is too large to be
    read live (one scan of its new candidates, in the creating transaction), so no view has to count them."""
    if not read_live(run):
        run_page_snapshot(run=run)


def version_labeling_runs(run_id: int) -> list[int]:
    """The run and its version's other labeling runs: its answers may flag theirs (``teacher_disagreement``)."""
    version = LabelingRun.objects.filter(pk=run_id).values("policy_version_id")
    others = LabelingRun.objects.filter(policy_version_id__in=version, purpose=LabelingRun.Purpose.LABELING)
    return [run_id, *others.exclude(pk=run_id).values_list("pk", flat=True)]


def figures_refresh(*, snapshot_id: int) -> bool:
    """Compute a stale snapshot's figures again (the task); False when it was fresh or is gone."""
    cleared = FiguresSnapshot.objects.filter(pk=snapshot_id, stale=True).update(stale=False)
    if not cleared:
        return False
    snapshot = FiguresSnapshot.objects.select_related("run__policy_version", "version").get(pk=snapshot_id)
    try:
        with transaction.atomic():
            _compute(snapshot)
            FiguresSnapshot.objects.filter(pk=snapshot_id).update(
                figures=snapshot.figures, computed_at=snapshot.computed_at, seconds=snapshot.seconds
            )
    except BaseException:
        FiguresSnapshot.objects.filter(pk=snapshot_id).update(stale=True)  # still old figures: say so
        raise
    return True


def figures_refresh_stale() -> int:
    """The watchdog's part: queue a refresh for every stale snapshot (a lost message leaves one stale)."""
    stale = list(FiguresSnapshot.objects.filter(stale=True).values_list("pk", flat=True)[:1000])
    enqueue_each(REFRESH_TASK, [(pk,) for pk in stale])
    return len(stale)


def figures_keep_ended(*, run_ids=None) -> int:
    """Queue the first computation of ended runs' run-page figures (a scan of their candidates: seconds at a
    million), so the first view of a run that just ended reads them rather than making them. ``run_ids``: those of
    these runs that have ended (after a chunk or a batch); None: the watchdog's part, runs that ended within
    KEEP_ENDED_WITHIN without them. Returns how many were queued."""
    ended = LabelingRun.objects.exclude(status__in=[LabelingRun.Status.QUEUED, LabelingRun.Status.RUNNING])
    if run_ids is not None:
        ended = ended.filter(pk__in=run_ids)
    else:
        ended = ended.filter(finished_at__gte=timezone.now() - KEEP_ENDED_WITHIN)
    kept = FiguresSnapshot.objects.filter(kind=FiguresSnapshot.Kind.RUN_PAGE).values("run_id")
    missing = list(ended.exclude(pk__in=kept).values_list("pk", flat=True)[:1000])
    enqueue_each(KEEP_TASK, [(pk,) for pk in missing])
    return len(missing)


def figures_keep_run(*, run_id: int) -> bool:
    """The task of :func:`figures_keep_ended`: compute an ended run's run-page figures unless they exist."""
    run = LabelingRun.objects.filter(pk=run_id).first()
    if (
        run is None
        or run.is_active
        or FiguresSnapshot.objects.filter(kind=FiguresSnapshot.Kind.RUN_PAGE, run=run).exists()
    ):
        return False  # running, or kept already (a stale one has its refresh queued)
    run_page_snapshot(run=run)
    return True


def figures_rebuild(*, run_ids=None, version_ids=None, here: bool = True) -> tuple[int, int]:
    """Compute kept figures again from scratch: those of the runs (with their versions'), of the versions, or all
    when neither is given. For data changed where no write marks them stale (the admin, SQL, a restored backup).
    ``here``: one after another in this process, else queued for the workers. Returns (marked stale, computed
    here)."""
    scope = Q()
    if run_ids is not None:
        versions = LabelingRun.objects.filter(pk__in=run_ids).values("policy_version_id")
        scope |= Q(run_id__in=run_ids) | Q(kind__in=VERSION_KINDS, version_id__in=versions)
    if version_ids is not None:
        scope |= Q(version_id__in=version_ids) | Q(run__policy_version_id__in=version_ids)
    chosen = FiguresSnapshot.objects.filter(scope) if scope else FiguresSnapshot.objects.all()
    ids = list(chosen.order_by("pk").values_list("pk", flat=True))
    FiguresSnapshot.objects.filter(pk__in=ids).update(stale=True)
    if not here:
        enqueue_each(REFRESH_TASK, [(pk,) for pk in ids])
        return len(ids), 0
    return len(ids), sum(figures_refresh(snapshot_id=pk) for pk in ids)  # one already refreshed by a worker: 0


def _compute(snapshot: FiguresSnapshot) -> None:
    snapshot.computed_at = timezone.now()  # before the reads: the figures hold at least what was committed then
    started = time.perf_counter()
    snapshot.figures = _figures(snapshot)
    snapshot.seconds = time.perf_counter() - started


def _figures(snapshot: FiguresSnapshot) -> dict:
    if snapshot.kind == FiguresSnapshot.Kind.RUN_PAGE:
        return runs_selectors.run_page_figures(run=snapshot.run)
    if snapshot.kind == FiguresSnapshot.Kind.VERSION_RULES:
        return feedback.version_rule_figures(version_id=snapshot.version_id)
    version, runs = agreement.scope_runs(snapshot.kind, run=snapshot.run, version=snapshot.version)
    return agreement.snapshot_figures(version=version, runs=runs)


def _small(snapshot: FiguresSnapshot) -> bool:
    """Rows the figures are over: reviews and human-approved items, or a run's candidates."""
    return snapshot.figures.get("size", 0) < INLINE_REFRESH_BELOW


def run_page_snapshot(*, run: LabelingRun) -> FiguresSnapshot:
    """A run's counts, trust rates and timeline as kept (for a run that has ended, or a large one running)."""
    return _snapshot(kind=FiguresSnapshot.Kind.RUN_PAGE, run=run)


def run_page(*, run: LabelingRun) -> runs_selectors.RunPage:
    """The run page's (and ``GET /api/runs/{id}``'s) counts, trust rates and timeline: live while a small run
    writes answers, else kept (a full scan of its candidates, seconds at a million, done again only when something
    changed them, and while it runs at most every ``RUN_FIGURES_REFRESH_SECONDS``)."""
    if read_live(run):
        return runs_selectors.run_page_live(run=run)
    return runs_selectors.run_page_from_snapshot(run_page_snapshot(run=run))


def agreement_snapshot(*, run: LabelingRun | None = None, version: PolicyVersion | None = None) -> FiguresSnapshot:
    """The agreement figures of a run or a version as kept; computed here the first time they are asked for."""
    if run is not None:
        return _snapshot(kind=FiguresSnapshot.Kind.RUN_AGREEMENT, run=run)
    return _snapshot(kind=FiguresSnapshot.Kind.VERSION_AGREEMENT, version=version)


def _snapshot(**key) -> FiguresSnapshot:
    snapshot = FiguresSnapshot.objects.filter(**key).first()
    if snapshot is not None and snapshot.stale and _small(snapshot):
        figures_refresh(snapshot_id=snapshot.pk)  # the queued refresh finds it fresh and does nothing
        snapshot.refresh_from_db()
    if snapshot is not None:
        return snapshot
    snapshot = FiguresSnapshot(**key)
    with transaction.atomic():
        _compute(snapshot)
        FiguresSnapshot.objects.bulk_create([snapshot], ignore_conflicts=True)  # two first views: one row
    return FiguresSnapshot.objects.get(**key)


def _kept(kind: str, scope: str, ids) -> dict[int, FiguresSnapshot]:
    """{run or version id (``scope`` "run_id" or "version_id"): its snapshot of ``kind``} in one read, however
    many; one not computed yet, or stale and small, is computed here as :func:`_snapshot` does."""
    ids = list(ids)
    kept = {getattr(s, scope): s for s in FiguresSnapshot.objects.filter(kind=kind, **{f"{scope}__in": ids})}
    for pk in ids:
        snapshot = kept.get(pk)
        if snapshot is None or (snapshot.stale and _small(snapshot)):
            kept[pk] = _snapshot(kind=kind, **{scope: pk})
    return kept


def run_pages(runs) -> dict[int, runs_selectors.RunPage]:
    """{run id: :func:`run_page`} of many runs: the kept figures in one read (not one per run), the small running
    runs' live."""
    runs = list(runs)
    kept = _kept(FiguresSnapshot.Kind.RUN_PAGE, "run_id", [run.pk for run in runs if not read_live(run)])
    return {
        run.pk: runs_selectors.run_page_live(run=run)
        if read_live(run)
        else runs_selectors.run_page_from_snapshot(kept[run.pk])
        for run in runs
    }


def runs_trust(runs) -> dict:
    """{run id: trust rates} as each run's page shows them: kept unless small and running (one read for all of
    them, not a scan of their candidates)."""
    return {pk: page.trust for pk, page in run_pages(runs).items()}


def rule_overrides(*, policy) -> feedback.RuleOverrides:
    """The draft editor's per-rule override counts over the policy's labeling runs: each version's kept counts
    (``version_rules``), summed. Two reads whatever the data; a version's counts not computed yet, or stale and
    small, are computed here."""
    versions = (
        LabelingRun.objects.filter(policy_version__policy=policy, purpose=LabelingRun.Purpose.LABELING)
        .order_by("policy_version_id")
        .values_list("policy_version_id", flat=True)
        .distinct()
    )
    kept = _kept(FiguresSnapshot.Kind.VERSION_RULES, "version_id", list(versions))
    return feedback.rule_overrides_from_snapshots(kept.values())
