"""Celery tasks of the policy app: thin, idempotent, keyed by ids."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def policy_version_freeze_prompt(version_id: int) -> str:
    return services.prompt_snapshot_store(version_id=version_id).prompt_sha256


@shared_task(ignore_result=True)
def watchdog_sweep() -> dict:
    """Celery beat sends this every WATCHDOG_INTERVAL_SECONDS (see ``policyhub.watchdog``)."""
    from . import watchdog  # it reads every app's models; a task module is imported before they are ready

    return watchdog.sweep()
