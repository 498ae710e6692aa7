"""Tasks that work on one job (an import, an export, a labeling run) always leave it in a clear state.

Declare such a task with :func:`job_task` and a ``mark_failed(*task_args, error=...)`` that records the failure on
the job's row. Transient trouble (the database connection dropped, the broker out of reach) is retried with
backoff, so a blip costs a retry, not the job. When the task fails for good (any other exception, or the last
retry), ``mark_failed`` gets a short error text: the exception's type and message with credentials in URLs
masked, cut to a page's worth. The traceback goes to the worker's log (Celery logs every failed task), never to a
page. Work on a job outside a task (a management command) uses :func:`failing_job` for the same outcome.
A worker killed outright runs nothing here: its task is delivered again (``acks_late``) and the leases and
the sweep pick the job up.
"""

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import botocore.exceptions
import kombu.exceptions
import psycopg
from celery import Task, shared_task
from django import db

log = logging.getLogger(__name__)

#: Worth another try later: the database or the broker could not be reached or dropped the connection (psycopg's
#: own error comes through where psycopg is used directly, e.g. ``COPY``).
TRANSIENT_ERRORS = (
    db.OperationalError,
    db.InterfaceError,
    psycopg.OperationalError,
    kombu.exceptions.OperationalError,
    ConnectionError,
    # the object store (STORAGE_BACKEND=s3) could not be reached (refused, no route: botocore's own
    # ConnectionError, not the builtin one), or dropped or timed out the connection
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
)
MAX_ERROR_CHARS = 2000
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/:@]*):[^\s/@]*@", re.IGNORECASE)


def error_text(error: BaseException) -> str:
    """``Type: message`` of an exception as a job shows it: passwords in URLs masked, at most MAX_ERROR_CHARS."""
    message = " ".join(str(error).split())
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    text = _URL_CREDENTIALS.sub(r"\1:***@", text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


class JobTask(Task):
    """Base of the tasks made by :func:`job_task`: bounded retries of transient errors, then the job fails."""

    acks_late = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 60
    max_retries = 5
    mark_failed: Callable[..., object]

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        _mark(lambda: self.mark_failed(*args, error=error_text(exc), **kwargs), f"{self.name}[{task_id}]")


def _mark(write: Callable[[], object], what: str) -> None:
    """Record the failure, on a fresh connection if the old one broke; a failure to record it is logged only."""
    for conn in db.connections.all(initialized_only=True):
        if not conn.in_atomic_block:  # never close a connection under a caller's open transaction
            conn.close_if_unusable_or_obsolete()
    try:
        write()
    except Exception:
        log.exception("%s: could not mark its job failed; the sweep will find it", what)


def job_task(*, mark_failed: Callable[..., object], **options):
    """``@shared_task`` for a task that works on one job; ``mark_failed`` takes the task's arguments + ``error``."""
    return shared_task(base=JobTask, mark_failed=staticmethod(mark_failed), **options)


@contextmanager
def failing_job(mark_failed: Callable[[str], object]) -> Iterator[None]:
    """Outside a task: any exception in the block marks the job failed (``mark_failed(error_text)``), then
    propagates."""
    try:
        yield
    except Exception as error:
        text = error_text(error)
        _mark(lambda: mark_failed(text), "a job outside a task")
        raise
