"""Enqueue Celery tasks from services: the one way work goes to the workers.

Services name the task instead of importing it (tasks import services, so the other way round would be an import
cycle). The message is sent once the current transaction commits, so a worker never looks for rows that are not
there yet (and nothing is sent for work that was rolled back); outside a transaction it is sent at once.
"""

from collections.abc import Iterable

from django.db import transaction

from .celery import app


def enqueue(task_name: str, *args, countdown: float | None = None) -> None:
    """Run the task ``task_name`` (its registered name, e.g. ``labeling.tasks.labeling_run_chunk``) with ``args``."""
    enqueue_each(task_name, [args], countdown=countdown)


def enqueue_each(task_name: str, calls: Iterable[tuple], *, countdown: float | None = None) -> None:
    """Run ``task_name`` once per argument tuple of ``calls``, in order, after commit."""
    calls = list(calls)
    task = _task(task_name)  # a wrong name fails here, in the caller, not later in an on-commit hook
    transaction.on_commit(lambda: [task.apply_async(args, countdown=countdown) for args in calls])


def _task(name: str):
    if name not in app.tasks:  # the apps' task modules are imported on first use, as a worker does when it starts
        app.loader.import_default_modules()
    return app.tasks[name]
