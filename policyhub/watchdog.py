"""The watchdog: one periodic sweep that sends stuck long work to the workers again.

Celery beat runs :func:`sweep` every ``WATCHDOG_INTERVAL_SECONDS`` (``policyhub.tasks.watchdog_sweep``;
``bin/run`` starts beat inside its worker). It covers every kind of work a crash can leave half-done: labeling-run
chunks, batch submissions and polls, imports and exports. What counts as stuck is :meth:`policyhub.leases.Sweep.stuck`;
what each kind does about it lives with its app (``labeling.services.recovery``, ``exports.services``). It also
deletes again the stored files an outage of the object store kept from being deleted when they were let go
(``labeling.services.storage``).
"""

import logging

from django.utils import timezone

from exports.services import export_recover_stuck
from labeling.services import figures_keep_ended, figures_refresh_stale, recovery, storage_deletions_retry

from .leases import Sweep
from .queueing import waiting_messages

log = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    """Look once; returns how many of each kind were sent again (``storage_deletions``: files deleted now)."""
    waiting = waiting_messages()
    look = Sweep(now=timezone.now(), queue_idle=not waiting)  # None (the broker cannot tell): a duplicate is safe
    sent = {
        "chunks": recovery.chunks_requeue(chunks=recovery.stuck_chunks(sweep=look), now=look.now),
        "batches": recovery.batch_runs_requeue(sweep=look),
        "imports": recovery.imports_requeue(sweep=look),
        "exports": export_recover_stuck(sweep=look, max_recoveries=recovery.MAX_RECOVERIES),
        # a queued refresh would do it anyway; so would a queued computation of an ended run's figures
        "figures": (figures_refresh_stale() + figures_keep_ended()) if look.queue_idle else 0,
        "storage_deletions": storage_deletions_retry(sweep=look),
    }
    if any(sent.values()):
        log.warning(
            "watchdog re-queued stuck work or deleted left-behind files: %s (messages waiting in the broker: %s)",
            sent,
            waiting,
        )
    return sent
