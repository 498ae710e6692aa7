"""Stored files the app lets go are deleted, or their deletion is kept until it happens: an outage of the object
store never leaves one behind for good.

Every place that lets a stored file go (a deleted export's objects, an upload once imported or refused, the objects
of a build that did not become the export's) calls :func:`storage_delete_or_defer`. It deletes each file at once;
one that cannot be deleted (the store is down, or refuses) gets a :class:`~labeling.models.PendingStorageDeletion`
row, written in the caller's transaction, so the row exists exactly when the reference to the file is gone. The
watchdog's sweep (``policyhub.watchdog``) calls :func:`storage_deletions_retry`, which deletes the due files again,
backing off after each failure (``STORAGE_DELETE_RETRY_FIRST_SECONDS``, doubling up to
``STORAGE_DELETE_RETRY_MAX_SECONDS``), and removes a row once its file is gone. A
file already gone counts as deleted (S3 and a folder both answer a delete of a missing file with success).

When the store turns out to be down (:func:`exports.storage.is_outage`), the remaining files of the same call or
sweep are not tried: each would wait for the same unreachable store. They are recorded (``attempts`` 0) or stay due
for the next sweep.
"""

import logging
import posixpath
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.utils import timezone

from exports import storage as export_storage
from policyhub.jobs import error_text
from policyhub.leases import Sweep

from ..models import PendingStorageDeletion

log = logging.getLogger(__name__)

#: A sweep retries at most this many due deletions (the oldest due first); the next sweep takes the rest.
SWEEP_BATCH = 500
#: How long a sweep's claim on the due rows lasts: another sweep leaves them alone meanwhile.
CLAIM = timedelta(minutes=5)


def storage_for(alias: str) -> Storage:
    """The storage a deletion names: ``exports`` (``exports.storage.exports_storage``: a bucket or EXPORTS_ROOT) or
    ``default`` (uploads)."""
    if alias == PendingStorageDeletion.Storage.EXPORTS:
        return export_storage.exports_storage()
    return storages[alias]


def retry_delay(attempts: int) -> timedelta:
    """How long after its ``attempts``-th failed try a deletion is tried again (the first wait, doubling each time
    up to the longest: both settings)."""
    first, longest = settings.STORAGE_DELETE_RETRY_FIRST_SECONDS, settings.STORAGE_DELETE_RETRY_MAX_SECONDS
    doublings = min(max(attempts - 1, 0), longest.bit_length())  # a file failing for months: no overflow
    return timedelta(seconds=min(first * 2**doublings, longest))


def storage_delete_or_defer(
    *, names: Iterable[str], storage: str = PendingStorageDeletion.Storage.DEFAULT
) -> list[str]:
    """Delete the files ``names`` of the storage ``storage`` (an alias: ``default`` or ``exports``) now; record
    each one that cannot be deleted for the sweep to delete later, in the caller's transaction. Returns the names
    deferred (none when the storage answered)."""
    target, now = storage_for(storage), timezone.now()
    deferred: list[PendingStorageDeletion] = []
    outage: BaseException | None = None
    for name in names:
        if not name:
            continue
        if outage is None:
            try:
                target.delete(name)
                continue
            except Exception as error:  # the caller's own work is done; the file is kept to be deleted later
                log.warning("%s:%s could not be deleted now, the sweep tries again: %s", storage, name, error)
                failed, attempts = error, 1
                if export_storage.is_outage(error):
                    outage = error
        else:
            failed, attempts = outage, 0  # not tried: the store is down
        deferred.append(
            PendingStorageDeletion(
                storage=storage,
                name=name,
                attempts=attempts,
                last_error=error_text(failed),
                created_at=now,
                last_attempt_at=now if attempts else None,
                next_attempt_at=now + retry_delay(1),
            )  # fmt: skip
        )
    if deferred:  # a file recorded already (a second failed try of the same caller) stays one row
        PendingStorageDeletion.objects.bulk_create(deferred, ignore_conflicts=True)
    return [pending.name for pending in deferred]


def storage_deletions_retry(*, sweep: Sweep, limit: int = SWEEP_BATCH) -> int:
    """Delete again the recorded files whose retry is due at ``sweep.now``; returns how many are gone now (their
    rows removed). A failure counts an attempt, keeps the error and backs off; an outage ends this sweep's tries.

    The due rows are claimed first in a short transaction (their next try moved CLAIM ahead, so another sweep
    leaves them alone), then deleted with no transaction or lock held across the store's calls: a store that
    hangs holds no database rows, and a sweep that dies mid-way leaves its claimed rows due again after CLAIM."""
    with transaction.atomic():
        due = list(
            PendingStorageDeletion.objects.filter(next_attempt_at__lte=sweep.now)
            .order_by("next_attempt_at", "pk")
            .select_for_update(skip_locked=True)[:limit]
        )
        PendingStorageDeletion.objects.filter(pk__in=[p.pk for p in due]).update(next_attempt_at=sweep.now + CLAIM)
    gone = 0
    for index, pending in enumerate(due):
        target = storage_for(pending.storage)
        try:
            target.delete(pending.name)
        except Exception as error:
            _failed(pending, error, sweep.now)
            if export_storage.is_outage(error):  # the rest would wait for the same store: due for the next sweep
                untried = [p.pk for p in due[index + 1 :]]
                PendingStorageDeletion.objects.filter(pk__in=untried).update(next_attempt_at=sweep.now)
                break
            continue
        PendingStorageDeletion.objects.filter(pk=pending.pk).delete()
        if pending.storage == PendingStorageDeletion.Storage.EXPORTS:  # an export's folder, once it is empty
            export_storage.remove_empty_folder(target, posixpath.dirname(pending.name))
        gone += 1
    return gone


def _failed(pending: PendingStorageDeletion, error: BaseException, now: datetime) -> None:
    attempts = pending.attempts + 1
    log.warning("%s:%s still cannot be deleted (try %s): %s", pending.storage, pending.name, attempts, error)
    PendingStorageDeletion.objects.filter(pk=pending.pk).update(
        attempts=attempts,
        last_error=error_text(error),
        last_attempt_at=now,
        next_attempt_at=now + retry_delay(attempts),
    )
