"""The watchdog brings a run back after its worker is killed or its messages are lost, and leaves live work alone.

Real parts only: Celery worker subprocesses with beat inside (``-B``, as ``bin/run`` starts them) on Redis with the
default visibility timeout (an hour: Redis alone would hand the killed worker's chunk out again only then) or on
the embedded default's filesystem broker, the PostgreSQL test database, the teacher through the real openai client
at the local fake server, whose latency makes the kill land mid-chunk. Leases are shortened through settings.
"""

import io
import time

import pytest
from celery import Celery
from django.db.models import Count
from django.test import Client

from labeling.models import Candidate, LabelingRun, RunChunk, TeacherSample
from labeling.selectors import run_stuck_chunks
from labeling.services import import_file, labeling_run_create
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PAIRS, CHUNK = 40, 10
LEASE = 4  # seconds; the watchdog sweeps every LEASE / 2
ENV = {"OPENAI_API_KEY": "test", "LABELING_CHUNK_LEASE_SECONDS": str(LEASE), "WORK_LEASE_SECONDS": str(LEASE)}
#: What the README promises: back within about twice the lease once a worker is there, plus the work left.
RECOVERY_SECONDS = 2 * LEASE


def _pairs(count: int = PAIRS) -> None:
    for kind, header, rows in (
        ("members", "member_id,headline,skills", [f"m{i},Engineer {i},Python" for i in range(count)]),
        ("jobs", "job_id,title,description", ["j1,Data engineer,Pipelines"]),
        ("pairs", "member_id,job_id", [f"m{i},j1" for i in range(count)]),
    ):
        data = ("\n".join([header, *rows]) + "\n").encode()
        assert import_file(kind=kind, stream=io.BytesIO(data), name=f"{kind}.csv").ok


def _run(policy, config, **options) -> LabelingRun:
    return labeling_run_create(
        version=policy.versions.get(number=1), config=config, selection={"all": True}, chunk_size=CHUNK, **options
    )


def _status(run) -> str:
    return LabelingRun.objects.get(pk=run.pk).status


def _assert_each_pair_and_sample_once(run, server, pairs: int = PAIRS) -> LabelingRun:
    run.refresh_from_db()
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", pairs, 0)
    samples = TeacherSample.objects.filter(run=run)
    assert samples.count() == pairs
    assert not samples.values("pair", "sample_index").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Candidate.objects.filter(run=run, status="labeled").count() == pairs
    assert run.chunks.exclude(status="done").count() == 0
    assert pairs <= len(server.requests) <= pairs + CHUNK  # a lost chunk is asked again, nothing more
    return run


def _page(run, engineer) -> str:
    client = Client()
    client.force_login(engineer)
    return client.get(f"/runs/{run.pk}/").content.decode()


def _kill_mid_chunk(worker: Worker, run, server) -> None:
    worker.wait_for(
        lambda: LabelingRun.objects.get(pk=run.pk).samples_done >= CHUNK and len(server.requests) >= CHUNK + 3,
        "the first chunk to be written and the second to be under way",
    )
    worker.kill()
    assert LabelingRun.objects.get(pk=run.pk).samples_done < PAIRS


def test_a_killed_worker_s_run_completes_exactly_once_within_two_leases(policy, make_config, engineer, tmp_path):
    _pairs()
    purge_queue()
    with FakeOpenAI(latency=0.25) as server:
        config = make_config(base_url=server.base_url, concurrency=2, request_timeout=10)
        first = Worker(tmp_path, database_url=worker_database_url(), env=ENV, beat=True).start()
        plain = Worker(tmp_path, database_url=worker_database_url(), env=ENV)  # no beat: no watchdog
        second = Worker(tmp_path, database_url=worker_database_url(), env=ENV, beat=True)
        try:
            run = _run(policy, config)
            _kill_mid_chunk(first, run, server)
            # Without the watchdog the killed chunk waits for Redis's visibility timeout (an hour): stuck.
            plain.start()
            plain.wait_for(lambda: run_stuck_chunks(run=run) == 1, "the killed chunk to show as stuck", timeout=20)
            time.sleep(RECOVERY_SECONDS)
            assert _status(run) == "running" and run_stuck_chunks(run=run) == 1
            page = _page(run, engineer)
            assert "1 chunk is stuck" in page and "Resume run" in page
            plain.stop()
            second.start()
            back = time.monotonic()
            second.wait_for(lambda: _status(run) == "succeeded", "the run to finish", timeout=60)
            took = time.monotonic() - back
        finally:
            for worker in (first, plain, second):
                worker.stop()
    run = _assert_each_pair_and_sample_once(run, server)
    assert took < RECOVERY_SECONDS + 4, f"recovered in {took:.1f} s"
    assert run.recoveries == 1 and "1 chunk was stuck; the watchdog re-queued it at" in run.recovery_note
    page = _page(run, engineer)
    assert run.recovery_note in page and "is stuck" not in page


def test_a_slow_but_live_chunk_is_never_re_queued(policy, make_config, tmp_path):
    _pairs(20)
    purge_queue()
    with FakeOpenAI(latency=0.5) as server:  # 10 requests one at a time: a chunk takes longer than its lease
        config = make_config(base_url=server.base_url, concurrency=1, request_timeout=10)
        worker = Worker(tmp_path, database_url=worker_database_url(), env=ENV, beat=True).start()
        try:
            started = time.monotonic()
            run = _run(policy, config)
            worker.wait_for(lambda: _status(run) == "succeeded", "the run to finish", timeout=60)
            assert time.monotonic() - started > 2 * LEASE
        finally:
            worker.stop()
    run = _assert_each_pair_and_sample_once(run, server, pairs=20)
    assert len(server.requests) == 20 and run.recoveries == 0 and run.recovery_note == ""
    assert "watchdog" in worker.log()  # the sweeps did run meanwhile


def test_a_run_whose_messages_were_deleted_from_redis_completes_exactly_once(policy, make_config, tmp_path):
    import redis
    from django.conf import settings

    _pairs()
    purge_queue()
    with FakeOpenAI(latency=0.25) as server:
        config = make_config(base_url=server.base_url, concurrency=2, request_timeout=10)
        worker = Worker(tmp_path, database_url=worker_database_url(), env=ENV, beat=True).start()
        try:
            run = _run(policy, config)
            worker.wait_for(lambda: len(server.requests) >= 1, "the first chunk to be under way")
            broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
            # the teacher's queue of work (a run's chunks), with every priority's list
            deleted = broker.delete(*broker.keys(f"{settings.TEACHER_QUEUE}*"))
            assert deleted
            assert RunChunk.objects.filter(run=run, lease_until__isnull=True).count() == 3
            worker.wait_for(lambda: _status(run) == "succeeded", "the run to finish", timeout=60)
        finally:
            worker.stop()
    run = _assert_each_pair_and_sample_once(run, server)
    assert run.recoveries == 3 and "3 chunks were stuck" in run.recovery_note


FILESYSTEM = "filesystem://localhost//"


def _filesystem_sender(folder) -> Celery:
    """A producer on the filesystem queue the worker's embedded default reads (``var/celery`` in its folder)."""
    root = folder / "var" / "celery"
    for sub in ("queue", "processed", "control"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return Celery("sender", broker=FILESYSTEM, broker_transport_options={
        "data_folder_in": str(root / "queue"), "data_folder_out": str(root / "queue"),
        "processed_folder": str(root / "processed"), "control_folder": str(root / "control"),
    })  # fmt: skip


def test_a_killed_worker_s_run_completes_on_the_filesystem_broker(policy, make_config, tmp_path):
    _pairs()
    env = {**ENV, "CELERY_BROKER_URL": ""}  # the embedded default's broker, on the test database
    with FakeOpenAI(latency=0.25) as server:
        config = make_config(base_url=server.base_url, concurrency=2, request_timeout=10)
        first = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True).start()
        second = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True)
        try:
            run = _run(policy, config, enqueue_chunks=False)
            sender = _filesystem_sender(tmp_path)
            with sender.connection_for_write(FILESYSTEM) as conn:  # the env's CELERY_BROKER_URL would win
                for index in range(PAIRS // CHUNK):
                    sender.send_task("labeling.tasks.labeling_run_chunk", args=(run.pk, index), connection=conn,
                                     queue="teacher")  # fmt: skip
            assert len(list((tmp_path / "var" / "celery" / "queue").glob("*.teacher.msg"))) == PAIRS // CHUNK
            _kill_mid_chunk(first, run, server)
            second.start()
            back = time.monotonic()
            second.wait_for(lambda: _status(run) == "succeeded", "the run to finish", timeout=60)
            took = time.monotonic() - back
        finally:
            first.stop()
            second.stop()
    run = _assert_each_pair_and_sample_once(run, server)
    assert took < RECOVERY_SECONDS + 4, f"recovered in {took:.1f} s"
    assert run.recoveries == 1
