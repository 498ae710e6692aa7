"""A run whose worker loses its PostgreSQL connections mid-chunk (the server terminates every session, twice) still
completes: every pair × sample labeled exactly once, the teacher asked again for nothing but the chunk that was
under way, the run succeeded, and each drop cost the chunk one retry, not a wait for its lease to run out.

Real parts: a Celery worker subprocess with beat inside (as ``bin/run`` starts it), the PostgreSQL test database,
the teacher through the real openai client at the local fake server, whose latency makes the drop land mid-chunk.
Leases are shortened through settings, as in the recovery tests."""

import re
import time

import pytest
from django.db import connection
from django.db.models import Count

from labeling.models import Candidate, LabelingRun, TeacherSample
from labeling.services import labeling_run_create
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

from .test_run_recovery import _pairs

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PAIRS, SAMPLES, CHUNK = 30, 2, 10
PER_CHUNK = CHUNK * SAMPLES
LEASE = 4  # seconds; the watchdog sweeps every LEASE / 2
ENV = {"OPENAI_API_KEY": "test", "LABELING_CHUNK_LEASE_SECONDS": str(LEASE), "WORK_LEASE_SECONDS": str(LEASE)}


def _terminate_the_worker_s_sessions(timeout: float = 10) -> None:
    """The server drops every other session of the test database (the worker's), as soon as there is one."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the worker never had a database session to drop")


def _run(run_id: int) -> LabelingRun:
    return LabelingRun.objects.get(pk=run_id)


def _retries(log: str, reason: str) -> set[str]:
    return set(re.findall(rf"labeling_run_chunk\[([^\]]+)\] retry: Retry in \S+ {reason}", log))


def test_a_run_survives_its_database_connections_being_terminated_mid_chunk(policy, make_config, tmp_path):
    _pairs(PAIRS)
    purge_queue()
    with FakeOpenAI(latency=0.25) as server:
        config = make_config(base_url=server.base_url, concurrency=2, request_timeout=10, samples_per_pair=SAMPLES)
        worker = Worker(tmp_path, database_url=worker_database_url(), env=ENV, beat=True).start()
        try:
            run = labeling_run_create(
                version=policy.versions.get(number=1), config=config, selection={"all": True}, chunk_size=CHUNK
            )
            worker.wait_for(lambda: len(server.requests) >= 3, "the first chunk to be under way")
            _terminate_the_worker_s_sessions()
            worker.wait_for(lambda: _run(run.pk).samples_done >= PER_CHUNK, "the first chunk to be written")
            asked = len(server.requests)
            worker.wait_for(lambda: len(server.requests) >= asked + 3, "the second chunk to be under way")
            _terminate_the_worker_s_sessions()
            assert _run(run.pk).samples_done < PAIRS * SAMPLES
            worker.wait_for(lambda: not _run(run.pk).is_active, "the run to end", timeout=90)
        finally:
            worker.stop()
    run.refresh_from_db()
    total, log = PAIRS * SAMPLES, worker.log()
    assert (run.status, run.samples_done, run.samples_failed, run.error) == ("succeeded", total, 0, "")
    samples = TeacherSample.objects.filter(run=run)
    assert samples.count() == total
    assert not samples.values("pair", "sample_index").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Candidate.objects.filter(run=run, status="labeled").count() == PAIRS
    assert run.chunks.exclude(status="done").count() == 0
    # Only the chunks under way when the connections dropped were asked again.
    asked = sum(body["n"] for body in server.requests)  # a pair's SAMPLES samples are one request (n = SAMPLES)
    assert total <= asked <= total + 2 * PER_CHUNK, asked
    assert {body["n"] for body in server.requests} == {SAMPLES}
    # Each drop cost its chunk a retry, and the retry carried on at once: the failed attempt gave its lease back.
    dropped = _retries(log, r"OperationalError\('terminating connection due to administrator command")
    assert len(dropped) == 2, log[-4000:]
    assert not dropped & _retries(log, r"ChunkBusy"), log[-4000:]
    for task_id in dropped:
        assert f"labeling_run_chunk[{task_id}] succeeded" in log
