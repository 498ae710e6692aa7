"""Leases on long work (imports, exports; run chunks have their own in ``labeling.pipeline.chunk``).

A worker *claims* a row for a while (``lease_until``, ``lease_token``) and a :class:`Heartbeat` renews the lease
while it works, so a slow but live worker keeps its job. A worker that dies stops renewing; once the lease has run
out the watchdog (``policyhub.watchdog``) sends the job to the workers again, and the next claim wins it.
"""

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, connection
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

log = logging.getLogger(__name__)

#: A heartbeat renews a lease this many times per lease period.
RENEWALS_PER_LEASE = 4


@dataclass(frozen=True)
class Sweep:
    """One look for stuck work: when, and whether the broker's queues are empty (``queue_idle``)."""

    now: datetime
    queue_idle: bool

    def stuck(self, rows: QuerySet, grace: timedelta | None) -> QuerySet:
        """The unfinished ``rows`` (the caller narrows them to those) that no live lease holds and that were sent
        to the workers more than ``grace`` ago (None: however recently) and either had a lease that ran out (a
        worker took the job, then died) or, when nothing waits in the broker, were never taken (the message was
        lost). Re-sending them is safe: each task claims the lease before working."""
        rows = rows.exclude(lease_until__gte=self.now)
        if grace is not None:
            rows = rows.filter(queued_at__lt=self.now - grace)
        return rows if self.queue_idle else rows.filter(lease_until__isnull=False)


def new_token() -> str:
    return uuid.uuid4().hex


def lease_claim(model: type[Model], pk: int, token: str, seconds: float, **active) -> bool:
    """Take the lease of row ``pk`` for ``token`` unless another live lease holds it; ``active`` narrows which
    rows may be claimed (e.g. ``status__in=[…]``)."""
    now = timezone.now()
    return bool(
        model.objects.filter(pk=pk, **active)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_token=token))
        .update(lease_until=now + timedelta(seconds=seconds), lease_token=token)
    )


def lease_release(model: type[Model], pk: int, token: str, *, after_error: bool = False) -> None:
    """Give the lease back. ``after_error``: the work failed, perhaps because the database dropped the connection;
    reconnect if so, and if the release fails too, leave the lease to run out (the watchdog then re-sends the job)
    rather than hide the first error. Released at once, a retry of the task can claim the job again without waiting
    out the lease."""
    if after_error and not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()
    try:
        model.objects.filter(pk=pk, lease_token=token).update(lease_until=None, lease_token="")
    except DatabaseError:
        if not after_error:
            raise
        log.warning("could not release the lease of %s %s; it runs out by itself", model._meta.label, pk)


class Heartbeat(threading.Thread):
    """Renews the lease of row ``pk`` (while ``token`` holds it) from its own database connection, every
    ``interval`` seconds (default: RENEWALS_PER_LEASE times per lease). Use as a context manager around the work;
    leaving it stops the renewals. A dropped connection costs one beat: the next one reconnects."""

    def __init__(self, model: type[Model], pk: int, token: str, seconds: float, *, interval: float | None = None):
        super().__init__(name=f"lease-{model._meta.label_lower}-{pk}", daemon=True)
        self.model, self.pk, self.token, self.seconds = model, pk, token, seconds
        self.interval = interval or seconds / RENEWALS_PER_LEASE
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            while not self.finished.wait(self.interval):
                try:
                    self.beat()
                except DatabaseError as error:
                    log.warning("%s: %s; reconnecting on the next beat", self.name, error)
                    connection.close()
        finally:
            connection.close()

    def beat(self) -> None:
        self.model.objects.filter(pk=self.pk, lease_token=self.token).update(
            lease_until=timezone.now() + timedelta(seconds=self.seconds)
        )

    def __enter__(self) -> "Heartbeat":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.finished.set()
        self.join()
