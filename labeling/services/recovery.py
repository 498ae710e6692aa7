"""Stuck labeling work sent to the workers again: run chunks, batch submissions and polls, imports.

Called by the watchdog's periodic sweep (``policyhub.watchdog``) and by resuming a run that is stuck while
running. A job is *stuck* when it is neither done nor held by a live lease and either

- its lease ran out (a worker took it, then stopped renewing: killed, out of memory, machine lost), or
- it was never taken, it was queued longer than its lease ago and no message waits in the broker (the message
  was lost: a broker that lost its data, a filesystem queue whose worker died).

Re-sending is safe: every task re-checks what is done and claims a lease before working, so a duplicate message
finds the work done or taken and does nothing twice.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format

from policyhub import leases
from policyhub.leases import Sweep
from policyhub.queueing import enqueue

from ..models import BatchJob, ImportBatch, LabelingRun, RunChunk
from ..pipeline import chunk as chunk_engine
from .runs import enqueue_run_chunks

#: An import or export the watchdog has re-sent this many times is left alone (it keeps failing for a reason
#: a re-send will not fix; its page shows the count).
MAX_RECOVERIES = 10


def chunk_grace() -> timedelta:
    return chunk_engine.lease()


def work_grace() -> timedelta:
    return timedelta(seconds=settings.WORK_LEASE_SECONDS)


# --- run chunks ----------------------------------------------------------------------------------------------
def stuck_chunks(*, sweep: Sweep, run: LabelingRun | None = None, grace: bool = True) -> QuerySet[RunChunk]:
    """Pending chunks of running online runs that no live lease holds and that :class:`Sweep` counts as lost
    (``grace=False``: however recently they were queued)."""
    chunks = RunChunk.objects.filter(
        status=RunChunk.Status.PENDING, run__status=LabelingRun.Status.RUNNING, run__mode=LabelingRun.Mode.ONLINE
    )
    if run is not None:
        chunks = chunks.filter(run=run)
    return sweep.stuck(chunks, chunk_grace() if grace else None)


def chunks_requeue(*, chunks: QuerySet[RunChunk], now: datetime, by: str = "the watchdog") -> int:
    """Send these chunks to the workers again and record it on their runs; returns how many were sent."""
    sent = 0
    with transaction.atomic():
        picked = list(chunks.select_for_update(skip_locked=True, of=("self",)).values_list("pk", "run_id", "index"))
        by_run: dict[int, list[int]] = {}
        for _pk, run_id, index in picked:
            by_run.setdefault(run_id, []).append(index)
        RunChunk.objects.filter(pk__in=[pk for pk, _, _ in picked]).update(lease_until=None)
        for run in LabelingRun.objects.filter(pk__in=by_run):
            indexes = sorted(by_run[run.pk])
            enqueue_run_chunks(run, indexes)
            record(run.pk, len(indexes), now, _chunks_note(len(indexes), now, by))
            sent += len(indexes)
    return sent


def _chunks_note(count: int, now: datetime, by: str) -> str:
    what = "1 chunk was" if count == 1 else f"{count} chunks were"
    return f"{what} stuck; {by} re-queued {'it' if count == 1 else 'them'} at {clock(now)}."


def clock(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "H:i:s")


def record(run_id: int, count: int, now: datetime, note: str) -> None:
    LabelingRun.objects.filter(pk=run_id).update(
        recoveries=F("recoveries") + count, recovered_at=now, recovery_note=note[:300]
    )


# --- batch-mode runs -----------------------------------------------------------------------------------------
def batch_runs_requeue(*, sweep: Sweep) -> int:
    """Poll again the open batches nobody polled for a poll interval and a lease; submit again the batch runs
    whose submission never happened. Returns how many tasks were sent."""
    grace = work_grace()
    overdue = sweep.now - timedelta(seconds=settings.LABELING_BATCH_POLL_SECONDS) - grace
    jobs = BatchJob.objects.filter(
        run__status=LabelingRun.Status.RUNNING, status=BatchJob.Status.SUBMITTED, queued_at__lt=sweep.now - grace
    ).filter(Q(polled_at__lt=overdue) | Q(polled_at__isnull=True, submitted_at__lt=overdue))
    sent = 0
    with transaction.atomic():
        for job in jobs.select_for_update(skip_locked=True, of=("self",)):
            BatchJob.objects.filter(pk=job.pk).update(queued_at=sweep.now)
            batch_poll_restart(job.run_id)
            last = clock(job.polled_at) if job.polled_at else "its submission"
            record(job.run_id, 1, sweep.now, f"Its batch was not polled since {last}; the watchdog polled it "
                    f"again at {clock(sweep.now)}.")  # fmt: skip
            sent += 1
    if not sweep.queue_idle:
        return sent
    unsubmitted = (
        LabelingRun.objects.filter(
            status=LabelingRun.Status.RUNNING,
            mode=LabelingRun.Mode.BATCH,
            started_at__lt=sweep.now - grace,
            batch_jobs__isnull=True,
            chunks__status=RunChunk.Status.PENDING,
        )  # fmt: skip
        .filter(Q(recovered_at__isnull=True) | Q(recovered_at__lt=sweep.now - grace))
        .distinct()
    )
    for run_id in unsubmitted.values_list("pk", flat=True):
        enqueue("labeling.tasks.labeling_run_batch_submit", run_id)
        record(run_id, 1, sweep.now, f"Its batch was never submitted; the watchdog sent the submission again at "
                f"{clock(sweep.now)}.")  # fmt: skip
        sent += 1
    return sent


def batch_poll_restart(run_id: int) -> None:
    """Start a new chain of polls for the run's open batch; the old chain, if only late, ends at its next poll."""
    chain = leases.new_token()
    LabelingRun.objects.filter(pk=run_id).update(batch_poll_chain=chain)
    enqueue("labeling.tasks.labeling_run_batch_poll", run_id, chain)


# --- imports -------------------------------------------------------------------------------------------------
def stuck_imports(*, sweep: Sweep) -> QuerySet[ImportBatch]:
    """Uploaded imports, queued or running, that are stuck (:meth:`Sweep.stuck`)."""
    active = ImportBatch.objects.filter(
        status__in=[ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING], recoveries__lt=MAX_RECOVERIES
    ).exclude(stored_file="")
    return sweep.stuck(active, work_grace())


def imports_requeue(*, sweep: Sweep) -> int:
    sent = 0
    with transaction.atomic():
        for batch_id in stuck_imports(sweep=sweep).select_for_update(skip_locked=True).values_list("pk", flat=True):
            ImportBatch.objects.filter(pk=batch_id).update(
                lease_until=None, queued_at=sweep.now, recoveries=F("recoveries") + 1, recovered_at=sweep.now
            )
            enqueue("labeling.tasks.import_batch_process", batch_id)
            sent += 1
    return sent
