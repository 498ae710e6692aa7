"""Celery tasks of the labeling app: thin, idempotent, keyed by ids. Services enqueue them by name
(``policyhub.queueing``) after their transaction commits."""

from celery import shared_task
from django.conf import settings

from . import services
from .services import batches
from .teacher.openai_provider import is_transient


@shared_task(acks_late=True)
def import_batch_process(batch_id: int) -> str:
    return services.import_stored_run(batch_id=batch_id).batch.status


@shared_task(bind=True, acks_late=True, max_retries=100)
def labeling_run_chunk(self, run_id: int, chunk_index: int) -> str:
    try:
        return services.labeling_run_chunk_process(run_id=run_id, chunk_index=chunk_index)
    except services.ChunkBusy as busy:
        raise self.retry(countdown=busy.retry_in) from None
    except Exception as error:
        services.labeling_run_fail(run_id=run_id, error=f"chunk {chunk_index}: {type(error).__name__}: {error}")
        raise


@shared_task(bind=True, acks_late=True, max_retries=20)
def labeling_run_batch_submit(self, run_id: int) -> str:
    return _batch_step(self, services.labeling_run_batch_submit, run_id, "batch submission")


@shared_task(bind=True, acks_late=True, max_retries=20)
def labeling_run_batch_poll(self, run_id: int, chain: str = "") -> str:
    """Polls until the batch ends; each poll is a new task, so a 24-hour batch uses no retry budget."""
    return _batch_step(self, services.labeling_run_batch_poll, run_id, "batch polling", chain=chain)


def _batch_step(task, step, run_id: int, what: str, chain: str | None = None) -> str:
    """Submit or poll: retry connection trouble, 429 and 5xx later; fail the run on anything else; poll again
    while a batch is open, in the same chain of polls (a submission starts the run's current chain)."""
    try:
        outcome = step(run_id=run_id) if chain is None else step(run_id=run_id, chain=chain)
    except Exception as error:
        if is_transient(error):
            raise task.retry(countdown=settings.LABELING_BATCH_POLL_SECONDS) from None
        services.labeling_run_fail(run_id=run_id, error=f"{what}: {type(error).__name__}: {error}")
        raise
    if outcome == batches.PENDING:
        chain = batches.poll_chain(run_id) if chain is None else chain
        args = (run_id, chain) if chain else (run_id,)
        labeling_run_batch_poll.apply_async(args, countdown=settings.LABELING_BATCH_POLL_SECONDS)
    return outcome
