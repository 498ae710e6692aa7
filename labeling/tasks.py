"""Celery tasks of the labeling app: thin, idempotent, keyed by ids."""

from celery import shared_task

from . import services


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
