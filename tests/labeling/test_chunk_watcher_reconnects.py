"""The thread that renews a chunk's lease and watches for a cancelled run outlives a dropped database connection:
it reconnects on its next beat, so a slow but live chunk keeps its lease and still stops when the run is
cancelled. (Imports and exports renew theirs with the same ``policyhub.leases.Heartbeat``.) Real threads on
PostgreSQL; the server terminates the watcher's session."""

import time

import pytest
from django.db import connection
from django.utils import timezone

from labeling.models import LabelingRun, RunChunk
from labeling.pipeline import chunk as chunk_engine
from labeling.services import labeling_run_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _lease_until(chunk_id: int):
    return RunChunk.objects.values_list("lease_until", flat=True).get(pk=chunk_id)


def _wait(condition, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _terminate_the_watcher_s_session() -> None:
    with connection.cursor() as cursor:  # this test's connection and the watcher's are the only ones
        cursor.execute(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] == 1


def test_the_watcher_keeps_the_lease_and_sees_a_cancel_after_its_connection_drops(
    pairs, published, make_config, monkeypatch
):
    monkeypatch.setattr(chunk_engine, "WATCH_INTERVAL", 0.1)
    run = labeling_run_create(version=published, config=make_config(), selection={"all": True})
    chunk = run.chunks.get(index=0)
    assert chunk_engine.claim(chunk, "token")
    watcher = chunk_engine.Watcher(run.pk, chunk.pk, "token")
    watcher.start()
    try:
        claimed = _lease_until(chunk.pk)
        _wait(lambda: _lease_until(chunk.pk) > claimed, "the first renewal")
        _terminate_the_watcher_s_session()
        dropped = timezone.now()

        _wait(lambda: _lease_until(chunk.pk) > dropped + chunk_engine.lease(), "a renewal after the drop")
        assert watcher.is_alive() and not watcher.stop_requested.is_set()
        LabelingRun.objects.filter(pk=run.pk).update(status=LabelingRun.Status.CANCELLED)
        _wait(watcher.stop_requested.is_set, "the watcher to notice the cancel")
    finally:
        watcher.finished.set()
        watcher.join(5)
    assert not watcher.is_alive()
