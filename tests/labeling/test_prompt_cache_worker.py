"""Prompt caching on a real Celery worker: the worker's requests reach the fake server through the real openai
client, and the run it finishes holds the provider's cached prompt tokens, priced at the cached-input price."""

import sys
from decimal import Decimal

import pytest

from labeling.models import LabelingRun
from labeling.services import labeling_run_create
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

from .conftest import answer

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_worker_run_records_and_prices_cached_prompt_tokens(pairs, published, owner, make_config, tmp_path,
                                                               monkeypatch):  # fmt: skip
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"})
    with FakeOpenAI() as server:
        server.responder = answer("strong_match")
        config = make_config(base_url=server.base_url, concurrency=1, request_timeout=10, price_input_per_mtok=4,
                             price_cached_input_per_mtok=1, price_output_per_mtok=8)  # fmt: skip
        try:
            worker.start()
            run = labeling_run_create(version=published, config=config, selection={"all": True}, user=owner)
            run = worker.wait_for(
                lambda: (r := LabelingRun.objects.get(pk=run.pk)).status == "succeeded" and r, "the run to finish"
            )
        finally:
            worker.stop()
            sys.stdout.write(worker.log())
    assert len(server.chat_requests()) == 4
    assert 0 < run.cached_input_tokens < run.input_tokens
    uncached = run.input_tokens - run.cached_input_tokens
    expected = (uncached * 4 + run.cached_input_tokens * 1 + run.output_tokens * 8) / Decimal(1_000_000)
    assert abs(run.cost - expected) <= Decimal("0.000002")
