"""Batch mode asks a pair's K samples in one line (``n = K``) where the endpoint takes it: the prompt is billed once
per pair, as online. An endpoint that refuses ``n > 1`` in batch lines (or ignores it) gets the samples re-asked one
line each in the follow-up batch, and the config remembers it, so later runs send one line per sample at once.
Either way samples, cache entries and labels are per sample index and mean the same."""

import json
from decimal import Decimal

import openai
import pytest

from labeling.models import BatchJob, Candidate, ResponseCache, TeacherConfig, TeacherSample
from labeling.services import batches, labeling_run_batch_poll, labeling_run_batch_submit, labeling_run_create

from .conftest import answer

K = 3


def start(published, config, **kwargs):
    return labeling_run_create(version=published, config=config, mode="batch", selection={"all": True}, **kwargs)


def run_batch(run, max_polls=10):
    """Submit and poll as the task chain would until nothing is pending."""
    labeling_run_batch_submit(run_id=run.pk)
    for _ in range(max_polls):
        if labeling_run_batch_poll(run_id=run.pk) != batches.PENDING:
            break
    run.refresh_from_db()
    return run


def line_ids(fake, job: BatchJob) -> list[str]:
    client = openai.OpenAI(base_url=fake.base_url, api_key="test-key")
    return sorted(json.loads(line)["custom_id"] for line in client.files.content(job.input_file_id).text.splitlines())


def line_ns(fake) -> list[int]:
    return [int(body.get("n") or 1) for body in fake.batch_lines]


def assert_billed_exactly(run, fake):
    """The run's counters and its samples hold what the fake's batch lines reported, each prompt once."""
    billed = fake.billed(batch=True)
    assert (run.input_tokens, run.cached_input_tokens, run.output_tokens) == (
        billed["prompt"], billed["cached"], billed["completion"],
    )  # fmt: skip
    samples = TeacherSample.objects.filter(run=run, cached=False)
    assert sum(s.input_tokens for s in samples) == billed["prompt"]
    assert sum(s.output_tokens for s in samples) == billed["completion"]


def meaning(run) -> dict:
    """What a run's labels mean: per pair its label, distribution, vote share, routing and trust verdict, and
    per (pair, sample index) the sample's label, rules and rationale."""
    candidates = {
        c.pair_id: (c.label, c.label_distribution, c.vote_share, c.routing, c.trust_ok)
        for c in Candidate.objects.filter(run=run)
    }
    samples = {
        (s.pair_id, s.sample_index): (s.label, tuple(s.cited_rules), s.rationale, s.error_kind)
        for s in TeacherSample.objects.filter(run=run)
    }
    return {"candidates": candidates, "samples": samples}


@pytest.fixture
def priced(openai_config):
    def make(name="batch-n", **fields):
        return openai_config(name, samples_per_pair=K, price_input_per_mtok=Decimal("2"),
                             price_output_per_mtok=Decimal("8"), **fields)  # fmt: skip

    return make


def test_an_endpoint_taking_n_gets_one_line_per_pair_and_each_prompt_is_billed_once(
    pairs, published, priced, fake_openai
):
    fake_openai.responder = answer("strong_match")
    config = priced()
    run = run_batch(start(published, config))
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", K * len(pairs), 0)
    job = BatchJob.objects.get(run=run)  # one batch: nothing was refused
    assert line_ids(fake_openai, job) == sorted(f"{p.pk}:0,1,2" for p in pairs)
    assert line_ns(fake_openai) == [K] * len(pairs) and fake_openai.chat_requests() == []
    assert_billed_exactly(run, fake_openai)
    assert run.cost == (Decimal(run.input_tokens) * 2 + Decimal(run.output_tokens) * 8) * Decimal("0.5") / 1_000_000
    for pair in pairs:  # the prompt on the first sample, the outputs shared by the three
        samples = list(TeacherSample.objects.filter(run=run, pair=pair).order_by("sample_index"))
        assert [s.sample_index for s in samples] == [0, 1, 2]
        assert samples[0].input_tokens > 0 and all(s.input_tokens == 0 for s in samples[1:])
        assert all(s.output_tokens > 0 and s.attempts == 1 for s in samples)
    assert ResponseCache.objects.count() == K * len(pairs)  # one cache entry per sample index
    config.refresh_from_db()
    assert config.n_supported is True and config.n_checked_at is not None

    # the same run against an endpoint that refuses n: the same labels, the prompt paid per sample
    fake_openai.reset()
    fake_openai.n_mode, fake_openai.responder = "refuse", answer("strong_match")
    ResponseCache.objects.all().delete()
    refused = run_batch(start(published, priced("refusing")))
    assert refused.status == "succeeded"
    assert meaning(refused)["candidates"].values() and meaning(refused) == meaning(run)
    assert refused.input_tokens == K * run.input_tokens
    assert abs(refused.output_tokens - run.output_tokens) <= K * len(pairs)  # the fake rounds per response


def test_lines_refused_for_n_are_asked_again_one_per_sample_and_the_refusal_is_remembered(
    pairs, published, priced, fake_openai
):
    fake_openai.n_mode = "refuse"
    fake_openai.responder = answer("partial_match")
    config = priced()
    run = start(published, config)
    labeling_run_batch_submit(run_id=run.pk)
    assert labeling_run_batch_poll(run_id=run.pk) == batches.PENDING
    assert labeling_run_batch_poll(run_id=run.pk) == batches.PENDING  # completed, all refused: resubmitted
    first, second = BatchJob.objects.filter(run=run).order_by("attempt")
    assert line_ids(fake_openai, first) == sorted(f"{p.pk}:0,1,2" for p in pairs)
    assert (first.completed_count, first.failed_count) == (0, len(pairs))
    assert {v["error_kind"] for v in first.violations.values()} == {"n_refused"}
    run.refresh_from_db()
    assert (run.samples_done, run.samples_failed, run.input_tokens) == (0, 0, 0)  # a refusal is not a failure
    assert (second.resubmission, second.request_count) == (True, K * len(pairs))
    assert line_ids(fake_openai, second) == sorted(f"{p.pk}:{i}" for p in pairs for i in range(K))
    config.refresh_from_db()
    assert config.n_supported is None  # not known until a line with n = 1 is answered

    run = run_batch(run)
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", K * len(pairs), 0)
    assert line_ns(fake_openai) == [K] * len(pairs) + [1] * (K * len(pairs))
    assert_billed_exactly(run, fake_openai)  # the refused lines cost nothing
    assert all(s.attempts == 1 and s.input_tokens > 0 for s in TeacherSample.objects.filter(run=run))
    assert set(Candidate.objects.filter(run=run).values_list("label", "vote_share")) == {("partial_match", 1.0)}
    config.refresh_from_db()
    assert config.n_supported is False

    # a later run of the config sends one line per sample at once: one batch, no n > 1
    fake_openai.reset()
    fake_openai.n_mode, fake_openai.responder = "refuse", answer("partial_match")
    ResponseCache.objects.all().delete()
    again = run_batch(start(published, config))
    assert again.status == "succeeded" and BatchJob.objects.filter(run=again).count() == 1
    assert line_ns(fake_openai) == [1] * (K * len(pairs))
    assert meaning(again) == meaning(run)


def test_a_400_on_a_line_is_a_failure_where_the_endpoint_is_known_to_take_n(pairs, published, priced, fake_openai):
    config = priced()
    TeacherConfig.objects.filter(pk=config.pk).update(n_supported=True)
    fake_openai.n_mode = "refuse"  # the refusal is then the request's own fault: not asked again
    run = run_batch(start(published, config))
    assert (run.samples_done, run.samples_failed) == (0, K * len(pairs))
    assert BatchJob.objects.filter(run=run).count() == 1
    assert set(Candidate.objects.filter(run=run).values_list("status", flat=True)) == {"failed"}
    assert set(TeacherSample.objects.filter(run=run).values_list("error_kind", flat=True)) == {"http_400"}


def test_an_endpoint_ignoring_n_gets_the_missing_samples_asked_one_by_one(pairs, published, priced, fake_openai):
    fake_openai.n_mode = "ignore"  # one choice whatever n asks
    fake_openai.responder = answer("no_match", rationale="No overlap.")
    config = priced()
    run = run_batch(start(published, config))
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", K * len(pairs), 0)
    assert line_ns(fake_openai) == [K] * len(pairs) + [1] * ((K - 1) * len(pairs))  # each pair's 2 missing
    assert_billed_exactly(run, fake_openai)
    config.refresh_from_db()
    assert config.n_supported is False


def test_a_choice_violating_the_schema_is_asked_again_alone_and_pays_both(pairs, published, priced, fake_openai):
    def second_choice_once_bad(request, call_number):
        label = "not_a_label" if call_number == 1 else "no_match"
        return {"label": label, "rationale": "No overlap.", "cited_rules": ["R1"]}

    fake_openai.responder = second_choice_once_bad
    run = run_batch(start(published, priced()))
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", K * len(pairs), 0)
    first, second = BatchJob.objects.filter(run=run).order_by("attempt")
    assert sorted(first.violations) == sorted(f"{p.pk}:1" for p in pairs)
    assert line_ids(fake_openai, second) == sorted(f"{p.pk}:1" for p in pairs)
    retried = TeacherSample.objects.filter(run=run, attempts=2)
    assert set(retried.values_list("pair_id", "sample_index")) == {(p.pk, 1) for p in pairs}
    assert all(s.input_tokens > 0 for s in retried)  # the retry's prompt is billed on the sample it re-asked
    assert_billed_exactly(run, fake_openai)


def test_cached_samples_are_left_out_of_a_pairs_line(pairs, published, openai_config, fake_openai, process_run):
    fake_openai.responder = answer("strong_match")
    online = process_run(labeling_run_create(version=published, config=openai_config("k2", samples_per_pair=2),
                                             selection={"all": True}))  # fmt: skip
    assert online.samples_done == 2 * len(pairs)
    fake_openai.reset()
    fake_openai.responder = answer("strong_match")
    run = run_batch(start(published, openai_config("k4", samples_per_pair=4)))
    assert (run.status, run.samples_done, run.samples_cached) == ("succeeded", 4 * len(pairs), 2 * len(pairs))
    assert line_ids(fake_openai, BatchJob.objects.get(run=run)) == sorted(f"{p.pk}:2,3" for p in pairs)
    assert line_ns(fake_openai) == [2] * len(pairs)
    assert_billed_exactly(run, fake_openai)  # cached samples cost nothing


def test_ingesting_a_batch_of_n_lines_twice_adds_nothing(pairs, published, priced, fake_openai):
    run = run_batch(start(published, priced()))
    counters = (run.samples_done, run.input_tokens, run.output_tokens, run.cost)
    job = BatchJob.objects.get(run=run)
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test-key")
    batch = client.batches.retrieve(job.openai_batch_id)
    from labeling.pipeline.context import RunContext

    results = batches.read_results(client, batch, RunContext.of(run))
    assert len(results.answers) == K * len(pairs) and results.n_learned is True
    assert batches.ingest(RunContext.of(run), job, batch, results) is False
    run.refresh_from_db()
    assert (run.samples_done, run.input_tokens, run.output_tokens, run.cost) == counters
    assert TeacherSample.objects.filter(run=run).count() == K * len(pairs)
