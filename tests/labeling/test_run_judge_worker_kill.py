"""A worker killed in the middle of a judged run pays the judge no more than the chunk it was in, and writes no
verdict twice (as ``test_run_worker_kill.py`` for the teacher).

Real parts only: a Celery worker subprocess on Redis and the PostgreSQL test database, the teacher and the judge
reached through the real openai client at the local fake server (with latency, so the kill lands mid-chunk).
"""

from decimal import Decimal

import pytest

from labeling.models import Candidate, LabelingRun, TeacherSample
from labeling.services import labeling_run_create
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI, is_judge_request

from .test_run_worker_kill import PAIRS, _import

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_killing_a_worker_mid_judged_run_pays_and_writes_each_verdict_once(policy, make_config, tmp_path):
    _import("members", "member_id,headline,skills", [f"m{i},Engineer {i},Python" for i in range(PAIRS)])
    _import("jobs", "job_id,title,description", ["j1,Data engineer,Pipelines"])
    _import("pairs", "member_id,job_id", [f"m{i},j1" for i in range(PAIRS)])
    purge_queue()
    env = {"OPENAI_API_KEY": "test", "CELERY_VISIBILITY_TIMEOUT": "3", "LABELING_CHUNK_LEASE_SECONDS": "4"}
    with FakeOpenAI(latency=0.25) as server:
        config = make_config(base_url=server.base_url, samples_per_pair=1, concurrency=2, request_timeout=10)
        judge = make_config("judge", model="fake-judge", base_url=server.base_url, concurrency=2, request_timeout=10,
                            price_input_per_mtok=1, price_output_per_mtok=4)  # fmt: skip
        first = Worker(tmp_path, database_url=worker_database_url(), env=env).start()
        second = Worker(tmp_path, database_url=worker_database_url(), env=env)
        try:
            run = labeling_run_create(
                version=policy.versions.get(number=1), config=config, selection={"all": True}, chunk_size=10,
                judge=judge,
            )  # fmt: skip
            # Kill once the first chunk (10 answers, 10 verdicts) is committed and the next one is under way.
            first.wait_for(
                lambda: LabelingRun.objects.get(pk=run.pk).judge_requests >= 10 and len(server.requests) >= 23,
                "the first chunk to be judged and written and the second to be under way",
            )
            first.kill()
            assert LabelingRun.objects.get(pk=run.pk).judge_requests < PAIRS
            second.start()
            second.wait_for(
                lambda: LabelingRun.objects.get(pk=run.pk).status == "succeeded", "the run to finish", timeout=90
            )
        finally:
            first.stop()
            second.stop()
        judge_bodies = [body for body in server.requests if is_judge_request(body)]
    run.refresh_from_db()
    samples = list(TeacherSample.objects.filter(run=run))
    assert len(samples) == PAIRS and all(s.judge and s.judge["error"] == "" for s in samples)
    # every verdict counted once: the run's judge counters are the sum of the verdicts stored
    assert (run.judge_requests, run.judge_cached, run.judge_failed) == (PAIRS, 0, 0)
    assert run.judge_input_tokens == sum(s.judge["input_tokens"] for s in samples)
    assert run.judge_output_tokens == sum(s.judge["output_tokens"] for s in samples)
    assert run.judge_cost == Decimal(run.judge_input_tokens + 4 * run.judge_output_tokens) / 1_000_000
    checks = [c.trust["judge_verdict"] for c in Candidate.objects.filter(run=run)]
    assert checks == [{"ok": True, "detail": ""}] * PAIRS
    # the killed chunk's judge requests were asked again: that is the whole price of the crash
    assert PAIRS <= len(judge_bodies) <= PAIRS + 10
