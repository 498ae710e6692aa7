"""The OpenAI provider starts requests while the caller is still preparing later ones, and a chunk is prepared in
slices: every pair is labelled once, the cache still answers, and a chunk cancelled half-way is not marked done."""

import threading
import time

import pytest
from django.db import connection

from labeling.models import Candidate, LabelingRun, RunChunk, TeacherSample
from labeling.pipeline import chunk
from labeling.services import labeling_run_cancel, labeling_run_create, labeling_run_resume
from labeling.services import runs as run_services
from labeling.teacher import LabelSpace, TeacherRequest
from labeling.teacher.openai_provider import FEED_REQUESTS, OpenAIProvider

from .conftest import answer

SPACE = LabelSpace(labels=("strong_match", "partial_match", "no_match"), rule_ids=("R1", "R2", "R3"))


def request(n: int) -> TeacherRequest:
    messages = [{"role": "system", "content": "Label it."}, {"role": "user", "content": f"pair {n}"}]
    return TeacherRequest(key=(n, 0), messages=messages, sample_index=0)


def provider(openai_config) -> OpenAIProvider:
    return OpenAIProvider(snapshot=openai_config(concurrency=8).snapshot(), space=SPACE)


def test_the_first_requests_are_answered_while_later_ones_are_still_being_prepared(openai_config, fake_openai):
    fake_openai.responder = answer("no_match")
    seen_while_preparing = []

    def prepared():
        yield from (request(n) for n in range(FEED_REQUESTS))
        deadline = time.monotonic() + 10
        while not fake_openai.chat_requests() and time.monotonic() < deadline:
            time.sleep(0.01)  # the caller is still "reading the database" for the next slice
        seen_while_preparing.append(len(fake_openai.chat_requests()))
        yield from (request(n) for n in range(FEED_REQUESTS, FEED_REQUESTS + 5))

    answers = list(provider(openai_config).answer_stream(prepared()))
    assert seen_while_preparing[0] > 0
    assert sorted(a.key for a in answers) == [(n, 0) for n in range(FEED_REQUESTS + 5)]
    assert all(a.ok and a.label == "no_match" for a in answers)


def test_a_failure_while_preparing_requests_ends_the_stream_with_that_error(openai_config, fake_openai):
    fake_openai.responder = answer("no_match")

    def prepared():
        yield from (request(n) for n in range(3))
        raise RuntimeError("the database went away")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the database went away"):
        list(provider(openai_config).answer_stream(prepared()))
    assert time.monotonic() - started < 10
    assert len(fake_openai.chat_requests()) <= 3


def test_a_chunk_prepared_in_slices_labels_every_pair_once_and_a_rerun_is_all_cache(
    pairs, published, openai_config, fake_openai, process_run, monkeypatch
):
    monkeypatch.setattr(chunk, "PREPARE_SLICE", 1)
    monkeypatch.setattr(chunk, "FIRST_SLICE", 1)
    fake_openai.responder = answer("partial_match")
    config = openai_config(samples_per_pair=2)
    first = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    assert (first.status, first.samples_done, first.samples_cached) == ("succeeded", 8, 0)
    assert TeacherSample.objects.filter(run=first).count() == 8
    assert (len(fake_openai.chat_requests()), fake_openai.answers_asked()) == (4, 8)  # a request per pair, n = 2
    assert set(Candidate.objects.filter(run=first).values_list("label", flat=True)) == {"partial_match"}

    again = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    assert (again.status, again.samples_done, again.samples_cached) == ("succeeded", 8, 8)
    assert len(fake_openai.chat_requests()) == 4  # nothing new was asked
    assert again.cost == 0


# the chunk and its watcher work in their own connections: they must see committed rows
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunk_cancelled_half_way_is_not_done_and_resume_asks_only_what_is_missing(
    pairs, published, openai_config, fake_openai, process_run, monkeypatch
):
    monkeypatch.setattr(chunk, "WATCH_INTERVAL", 0.1)
    monkeypatch.setattr(chunk, "PREPARE_SLICE", 1)
    monkeypatch.setattr(chunk, "FIRST_SLICE", 1)
    fake_openai.responder = answer("strong_match")
    fake_openai.latency = 0.3
    run = labeling_run_create(
        version=published, config=openai_config(samples_per_pair=3, concurrency=1), selection={"all": True},
        chunk_size=4,
    )  # fmt: skip
    outcome = []

    def work():
        try:
            outcome.append(run_services.labeling_run_chunk_process(run_id=run.pk, chunk_index=0))
        finally:
            connection.close()  # this thread's own connection

    worker = threading.Thread(target=work)
    worker.start()
    deadline = time.monotonic() + 10
    while len(fake_openai.chat_requests()) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    labeling_run_cancel(run=run)
    worker.join(30)
    assert "chunk stopped early" in outcome[0]
    assert RunChunk.objects.get(run=run, index=0).status == RunChunk.Status.PENDING
    asked = fake_openai.answers_asked()  # a pair's 3 samples are one request with n = 3
    assert 3 <= asked < 12 and asked % 3 == 0
    run.refresh_from_db()
    assert run.status == LabelingRun.Status.CANCELLED
    assert run.samples_done == TeacherSample.objects.filter(run=run).count() == asked

    fake_openai.latency = 0
    run = process_run(labeling_run_resume(run=run))
    assert (run.status, run.samples_done) == ("succeeded", 12)
    assert fake_openai.answers_asked() == 12  # the stored samples were not asked again
    assert len(fake_openai.chat_requests()) == 4
    assert TeacherSample.objects.filter(run=run).count() == 12
