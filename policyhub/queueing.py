"""Enqueue Celery tasks from services: the one way work goes to the workers.

Services name the task instead of importing it (tasks import services, so the other way round would be an import
cycle). The message is sent once the current transaction commits, so a worker never looks for rows that are not
there yet (and nothing is sent for work that was rolled back); outside a transaction it is sent at once.
"""

from collections.abc import Iterable

from django.conf import settings
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


def waiting_messages() -> int | None:
    """How many messages wait in the broker's work queues (not the watchdog's own, nor those a worker has taken),
    or None if the broker cannot tell. The watchdog re-sends a job that was never started only when nothing is
    waiting: a message that is still queued would start it anyway."""
    from kombu.exceptions import ChannelError

    names = ({app.conf.task_default_queue} | set(app.amqp.queues)) - {settings.WATCHDOG_QUEUE}
    total = 0
    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            for name in names:
                try:
                    total += channel.queue_declare(queue=name, passive=True).message_count
                except ChannelError:  # Redis: a queue with no message left does not exist
                    continue
    except Exception:  # noqa: BLE001 - any broker trouble: unknown, and the caller decides
        return None
    return total
