"""A worker killed in the middle of a run loses nothing and duplicates nothing.

Real parts only: a Celery worker subprocess on Redis and the PostgreSQL test database, the teacher reached through
the real openai client at the local fake server (with latency, so the kill lands mid-chunk). The worker gets
SIGKILL; a second worker picks the unacknowledged chunk up once the broker's visibility timeout and the chunk's
lease (both shortened for the test) have passed.
"""

import pytest
from django.db.models import Count

from labeling.models import Candidate, LabelingRun, TeacherSample
from labeling.services import import_file, labeling_run_create
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PAIRS = 40


def _import(kind: str, header: str, rows: list[str]) -> None:
    import io

    data = ("\n".join([header, *rows]) + "\n").encode()
    result = import_file(kind=kind, stream=io.BytesIO(data), name=f"{kind}.csv")
    assert result.ok, result.batch.errors


@pytest.mark.parametrize("k", [1, 3], ids=["one-sample", "three-samples-one-request"])
def test_killing_a_worker_mid_run_loses_and_duplicates_nothing(policy, make_config, tmp_path, k):
    """With K = 3 a pair's samples are one request (n = 3): the kill costs whole requests, never a sample twice."""
    _import("members", "member_id,headline,skills", [f"m{i},Engineer {i},Python" for i in range(PAIRS)])
    _import("jobs", "job_id,title,description", ["j1,Data engineer,Pipelines"])
    _import("pairs", "member_id,job_id", [f"m{i},j1" for i in range(PAIRS)])
    purge_queue()
    env = {"OPENAI_API_KEY": "test", "CELERY_VISIBILITY_TIMEOUT": "3", "LABELING_CHUNK_LEASE_SECONDS": "4"}
    with FakeOpenAI(latency=0.25) as server:
        config = make_config(base_url=server.base_url, samples_per_pair=k, concurrency=2, request_timeout=10)
        first = Worker(tmp_path, database_url=worker_database_url(), env=env).start()
        second = Worker(tmp_path, database_url=worker_database_url(), env=env)
        try:
            run = labeling_run_create(
                version=policy.versions.get(number=1), config=config, selection={"all": True}, chunk_size=10
            )
            # Kill once the first chunk is committed and the next one has requests in flight.
            first.wait_for(
                lambda: LabelingRun.objects.get(pk=run.pk).samples_done >= 10 * k and len(server.requests) >= 13,
                "the first chunk to be written and the second to be under way",
            )
            first.kill()
            killed_at = LabelingRun.objects.get(pk=run.pk).samples_done
            assert killed_at < PAIRS * k
            second.start()
            second.wait_for(
                lambda: LabelingRun.objects.get(pk=run.pk).status == "succeeded", "the run to finish", timeout=60
            )
        finally:
            first.stop()
            second.stop()
    run.refresh_from_db()
    assert (run.samples_done, run.samples_failed, run.pairs_total) == (PAIRS * k, 0, PAIRS)
    samples = TeacherSample.objects.filter(run=run)
    assert samples.count() == PAIRS * k
    assert not samples.values("pair", "sample_index").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Candidate.objects.filter(run=run, status="labeled").count() == PAIRS
    assert run.chunks.filter(status="done").count() == 4
    # the killed chunk's requests were asked again: that is the whole price of the crash
    assert PAIRS <= len(server.requests) <= PAIRS + 10
    assert {body["n"] for body in server.requests} == {k}  # a pair's K samples in one request
