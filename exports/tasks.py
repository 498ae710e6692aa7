"""Celery tasks of the exports app: thin, keyed by id, safe to re-deliver (a built export is left as it is)."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def export_build_task(export_id: int) -> str:
    return services.export_build(export_id=export_id).status
