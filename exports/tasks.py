"""Celery tasks of the exports app: thin, keyed by id, safe to re-deliver (a built export is left as it is).
A ``policyhub.jobs.job_task``: transient trouble is retried, and a build that fails for good marks the export
failed with the error."""

from policyhub.jobs import job_task

from . import services


def _export_failed(export_id: int, *, error: str) -> None:
    services.export_fail(export_id=export_id, error=error)


@job_task(mark_failed=_export_failed)
def export_build_task(export_id: int) -> str:
    return services.export_build(export_id=export_id).status
