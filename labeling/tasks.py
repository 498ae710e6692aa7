"""Celery tasks of the labeling app: thin, idempotent, keyed by ids. Services enqueue them by name
(``policyhub.queueing``) after their transaction commits. Each is a ``policyhub.jobs.job_task``: transient
trouble is retried, and a task that fails for good marks its import or run failed with the error."""

from celery import shared_task
from django.conf import settings

from policyhub.jobs import job_task

from . import services
from .services import batches
from .teacher.openai_provider import is_transient


def _import_failed(batch_id: int, *, error: str) -> None:
    services.import_batch_fail(batch_id=batch_id, error=error)


def _chunk_failed(run_id: int, chunk_index: int, *, error: str) -> None:
    services.labeling_run_fail(run_id=run_id, error=f"chunk {chunk_index}: {error}")


def _submit_failed(run_id: int, *, error: str) -> None:
    services.labeling_run_fail(run_id=run_id, error=f"batch submission: {error}")


def _poll_failed(run_id: int, chain: str = "", *, error: str) -> None:
    services.labeling_run_fail(run_id=run_id, error=f"batch polling: {error}")


@job_task(mark_failed=_import_failed)
def import_batch_process(batch_id: int) -> str:
    return services.import_stored_run(batch_id=batch_id).batch.status


@job_task(mark_failed=_chunk_failed, bind=True, max_retries=100)
def labeling_run_chunk(self, run_id: int, chunk_index: int) -> str:
    try:
        return services.labeling_run_chunk_process(run_id=run_id, chunk_index=chunk_index)
    except services.ChunkBusy as busy:
        raise self.retry(exc=busy, countdown=busy.retry_in) from None


@job_task(mark_failed=_submit_failed, bind=True, max_retries=20)
def labeling_run_batch_submit(self, run_id: int) -> str:
    return _batch_step(self, services.labeling_run_batch_submit, run_id)


@job_task(mark_failed=_poll_failed, bind=True, max_retries=20)
def labeling_run_batch_poll(self, run_id: int, chain: str = "") -> str:
    """Polls until the batch ends; each poll is a new task, so a 24-hour batch uses no retry budget."""
    return _batch_step(self, services.labeling_run_batch_poll, run_id, chain=chain)


def _batch_step(task, step, run_id: int, chain: str | None = None) -> str:
    """Submit or poll: retry connection trouble, 429 and 5xx later (the last failure fails the run, as anything
    else does at once); poll again while a batch is open, in the same chain of polls (a submission starts the
    run's current chain)."""
    try:
        outcome = step(run_id=run_id) if chain is None else step(run_id=run_id, chain=chain)
    except Exception as error:
        if is_transient(error):
            raise task.retry(exc=error, countdown=settings.LABELING_BATCH_POLL_SECONDS) from None
        raise
    if outcome == batches.PENDING:
        chain = batches.poll_chain(run_id) if chain is None else chain
        args = (run_id, chain) if chain else (run_id,)
        labeling_run_batch_poll.apply_async(args, countdown=settings.LABELING_BATCH_POLL_SECONDS)
    return outcome


@shared_task(ignore_result=True, acks_late=True, max_retries=0)
def figures_refresh(snapshot_id: int) -> bool:
    """Precomputed figures whose inputs changed: compute them again (a no-op when they are fresh)."""
    return services.figures_refresh(snapshot_id=snapshot_id)


@shared_task(ignore_result=True, acks_late=True, max_retries=0)
def figures_keep_run(run_id: int) -> bool:
    """A run that ended: compute its page's figures now, not on its first view (a no-op when they exist)."""
    return services.figures_keep_run(run_id=run_id)
