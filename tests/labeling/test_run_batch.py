"""Batch-mode runs against the local fake OpenAI server's files and batches endpoints, through the real client.
The services are called in-process as the worker's tasks would call them."""

import json
from decimal import Decimal

import openai
import pytest
from django.core.management import call_command

from labeling import tasks
from labeling.models import BatchJob, Candidate, LabelingRun, ResponseCache, RunChunk, TeacherSample
from labeling.pipeline.context import RunContext
from labeling.services import (
    batches,
    labeling_run_batch_poll,
    labeling_run_batch_submit,
    labeling_run_cancel,
    labeling_run_create,
    labeling_run_resume,
)
from policyhub import services as policy_services

from .conftest import answer


def start(published, config, **kwargs):
    kwargs.setdefault("selection", {"all": True})
    return labeling_run_create(version=published, config=config, mode="batch", **kwargs)


def finish(run, max_polls=10):
    """Poll as the task chain would until nothing is pending."""
    for _ in range(max_polls):
        if labeling_run_batch_poll(run_id=run.pk) != batches.PENDING:
            break
    run.refresh_from_db()
    return run


def uploaded_lines(fake_openai, job: BatchJob) -> list[dict]:
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test-key")
    return [json.loads(line) for line in client.files.content(job.input_file_id).text.splitlines()]


def about(member: str, job: str):
    """True for a request about this member and job."""
    return lambda request: (
        f'"member_id": "{member}"' in request["messages"][1]["content"]
        and (f'"job_id": "{job}"' in request["messages"][1]["content"])
    )


def bad_label_for(target, times: int):
    def respond(request, call_number):
        label = "not_a_label" if target(request) and call_number < times else "strong_match"
        return {"label": label, "rationale": "Python and SQL.", "cited_rules": ["R1"]}

    return respond


def test_the_uploaded_jsonl_has_one_line_per_pair_asking_its_samples_with_the_online_body(
    pairs, published, openai_config, fake_openai
):
    config = openai_config(samples_per_pair=2, logprobs=True, top_logprobs=3, temperature=0.4)
    run = start(published, config)
    assert labeling_run_batch_submit(run_id=run.pk) == batches.PENDING
    job = BatchJob.objects.get(run=run)
    assert (job.attempt, job.resubmission, job.status, job.request_count) == (1, False, "submitted", 4)

    lines = uploaded_lines(fake_openai, job)
    assert sorted(line["custom_id"] for line in lines) == sorted(f"{p.pk}:0,1" for p in pairs)
    line = lines[0]
    assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")
    body = line["body"]
    assert list(body)[:3] == ["model", "messages", "n"]
    assert (body["model"], body["n"], body["temperature"], body["logprobs"], body["top_logprobs"]) == (
        "fake-teacher", 2, 0.4, True, 3,
    )  # fmt: skip
    assert body["messages"][0] == {"role": "system", "content": run.system_prompt}
    assert "<member>" in body["messages"][1]["content"]
    assert body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == [
        "strong_match", "partial_match", "no_match",
    ]  # fmt: skip
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test-key")
    assert client.batches.retrieve(job.openai_batch_id).metadata["policyhub_run"] == str(run.pk)
    assert fake_openai.chat_requests() == []  # nothing went through the online endpoint

    assert labeling_run_batch_submit(run_id=run.pk) == batches.PENDING  # a re-delivered task submits nothing
    assert BatchJob.objects.filter(run=run).count() == 1


def test_polling_before_the_batch_completes_leaves_the_run_running(pairs, published, openai_config, fake_openai):
    fake_openai.batch_polls_to_complete = 3
    run = start(published, openai_config())
    labeling_run_batch_submit(run_id=run.pk)
    assert labeling_run_batch_poll(run_id=run.pk) == batches.PENDING
    run.refresh_from_db()
    assert (run.status, run.samples_done, TeacherSample.objects.filter(run=run).count()) == ("running", 0, 0)
    assert BatchJob.objects.get(run=run).openai_status == "in_progress"


def test_a_completed_batch_becomes_samples_candidates_and_counters(pairs, published, openai_config, fake_openai):
    fake_openai.responder = answer("strong_match", probs={"strong_match": 0.6, "partial_match": 0.4})
    config = openai_config(
        samples_per_pair=3, logprobs=True, price_input_per_mtok=Decimal("2"), price_output_per_mtok=Decimal("8")
    )
    run = start(published, config)
    labeling_run_batch_submit(run_id=run.pk)
    run = finish(run)
    assert run.status == "succeeded" and run.finished_at
    assert (run.samples_done, run.samples_failed, run.samples_cached) == (12, 0, 0)
    assert run.input_tokens > 0 and run.output_tokens > 0
    # the Batch API's discount: the config's default batch_price_factor is 0.5
    assert run.cost == (Decimal(run.input_tokens) * 2 + Decimal(run.output_tokens) * 8) * Decimal("0.5") / 1_000_000
    assert set(Candidate.objects.filter(run=run).values_list("label", "routing", "vote_share")) == {
        ("strong_match", "needs_review", 1.0)  # logprobs say 0.6: low confidence
    }
    candidate = Candidate.objects.filter(run=run).first()
    assert candidate.label_distribution == pytest.approx({"strong_match": 0.6, "partial_match": 0.4, "no_match": 0})
    assert not RunChunk.objects.filter(run=run, status="pending").exists()
    job = BatchJob.objects.get(run=run)
    assert (job.status, job.completed_count, job.failed_count, job.violations) == ("completed", 4, 0, {})
    assert job.output_file_id and job.finished_at
    assert ResponseCache.objects.count() == 12
    sample = TeacherSample.objects.filter(run=run).first()
    assert (sample.attempts, sample.cached, sample.error_kind) == (1, False, "")
    assert json.loads(sample.raw_response)["label"] == "strong_match"


def test_cached_answers_are_answered_directly_and_not_put_in_the_batch(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.responder = answer("no_match", rationale="No overlap.")
    config = openai_config(price_input_per_mtok=Decimal("1"))
    online = process_run(
        labeling_run_create(version=published, config=config, selection={"pair_ids": [pairs[0].pk, pairs[1].pk]})
    )
    assert online.samples_done == 2

    run = start(published, config)
    labeling_run_batch_submit(run_id=run.pk)
    lines = uploaded_lines(fake_openai, BatchJob.objects.get(run=run))
    assert sorted(line["custom_id"] for line in lines) == [f"{pairs[2].pk}:0", f"{pairs[3].pk}:0"]
    run.refresh_from_db()
    assert (run.samples_done, run.samples_cached, run.input_tokens) == (2, 2, 0)  # written at submission
    run = finish(run)
    assert (run.status, run.samples_done, run.samples_cached) == ("succeeded", 4, 2)
    assert set(Candidate.objects.filter(run=run).values_list("label", flat=True)) == {"no_match"}

    again = start(published, config)  # everything is cached now: no batch at all, and free
    assert labeling_run_batch_submit(run_id=again.pk) == "everything was cached: nothing to submit"
    again.refresh_from_db()
    assert (again.status, again.samples_cached, again.cost) == ("succeeded", 4, 0)
    assert not BatchJob.objects.filter(run=again).exists()


def test_ingesting_a_batch_twice_adds_nothing(pairs, published, openai_config, fake_openai):
    run = start(published, openai_config(samples_per_pair=2))
    labeling_run_batch_submit(run_id=run.pk)
    run = finish(run)
    counters = (run.samples_done, run.input_tokens, run.output_tokens, run.cost)
    assert labeling_run_batch_poll(run_id=run.pk) == "run is succeeded"

    # a second worker that downloaded the same results and lost the race writes nothing
    job = BatchJob.objects.get(run=run)
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test-key")
    batch = client.batches.retrieve(job.openai_batch_id)
    results = batches.read_results(client, batch, RunContext.of(run))
    assert len(results.answers) == 8
    assert batches.ingest(RunContext.of(run), job, batch, results) is False
    run.refresh_from_db()
    assert (run.samples_done, run.input_tokens, run.output_tokens, run.cost) == counters
    assert TeacherSample.objects.filter(run=run).count() == 8


def test_a_schema_violation_is_resubmitted_once_in_a_second_batch_and_then_succeeds(
    pairs, published, openai_config, fake_openai
):
    fake_openai.responder = bad_label_for(about("m1", "j1"), times=1)
    run = start(published, openai_config())
    labeling_run_batch_submit(run_id=run.pk)
    for _ in range(2):
        outcome = labeling_run_batch_poll(run_id=run.pk)
    assert outcome == batches.PENDING
    first, second = BatchJob.objects.filter(run=run).order_by("attempt")
    target = Candidate.objects.get(run=run, pair__member__external_id="m1", pair__job__external_id="j1")
    assert list(first.violations) == [f"{target.pair_id}:0"]
    assert first.violations[f"{target.pair_id}:0"]["error_kind"] == "label_outside_set"
    assert (second.attempt, second.resubmission, second.request_count) == (2, True, 1)
    assert [line["custom_id"] for line in uploaded_lines(fake_openai, second)] == [f"{target.pair_id}:0"]
    run.refresh_from_db()
    assert (run.status, run.samples_done, run.samples_failed) == ("running", 3, 0)

    run = finish(run)
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", 4, 0)
    sample = TeacherSample.objects.get(run=run, pair_id=target.pair_id)
    assert (sample.attempts, sample.label, sample.error_kind) == (2, "strong_match", "")
    first_tokens = first.violations[f"{target.pair_id}:0"]["input_tokens"]
    assert sample.input_tokens > first_tokens > 0  # both requests were paid for
    assert run.input_tokens == sum(TeacherSample.objects.filter(run=run).values_list("input_tokens", flat=True))
    assert BatchJob.objects.filter(run=run).count() == 2


def test_violating_twice_is_a_failed_sample_with_its_raw_text_and_reason(pairs, published, openai_config, fake_openai):
    fake_openai.responder = bad_label_for(about("m2", "j2"), times=2)
    run = start(published, openai_config())
    labeling_run_batch_submit(run_id=run.pk)
    run = finish(run)
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", 3, 1)
    failed = TeacherSample.objects.get(run=run, error_kind="label_outside_set")
    assert failed.attempts == 2 and "not_a_label" in failed.raw_response and "not one of" in failed.error
    candidate = Candidate.objects.get(run=run, pair_id=failed.pair_id)
    assert candidate.status == "failed" and "label_outside_set" in candidate.error
    assert list(BatchJob.objects.filter(run=run).values_list("attempt", "status")) == [
        (1, "completed"), (2, "completed"),
    ]  # fmt: skip


def test_an_error_line_is_a_failed_sample_with_the_reason(pairs, published, openai_config, fake_openai):
    fake_openai.batch_faults = True
    fake_openai.fail_next("500")
    run = start(published, openai_config())
    labeling_run_batch_submit(run_id=run.pk)
    run = finish(run)
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", 3, 1)
    failed = TeacherSample.objects.get(run=run, error_kind="server_error")
    assert "batch request failed (500)" in failed.error and "had an error" in failed.error
    job = BatchJob.objects.get(run=run)
    assert (job.completed_count, job.failed_count, bool(job.error_file_id)) == (3, 1, True)
    assert Candidate.objects.get(run=run, pair_id=failed.pair_id).status == "failed"


@pytest.mark.parametrize("status", ["failed", "expired", "cancelled"])
def test_a_batch_that_fails_or_expires_fails_the_run_and_resuming_submits_again(
    status, pairs, published, openai_config, fake_openai
):
    fake_openai.batch_polls_to_complete = 5
    run = start(published, openai_config())
    labeling_run_batch_submit(run_id=run.pk)
    job = BatchJob.objects.get(run=run)
    fake_openai._batches[job.openai_batch_id]["status"] = status  # what OpenAI reports after 24 h, or on failure
    assert labeling_run_batch_poll(run_id=run.pk) == f"failed: batch {status}"
    run.refresh_from_db()
    job.refresh_from_db()
    assert run.status == "failed" and f"attempt 1) {status}" in run.error and "Resume the run" in run.error
    assert (job.status, job.openai_status) == (status, status)

    fake_openai.batch_polls_to_complete = 1
    labeling_run_resume(run=run)
    assert labeling_run_batch_submit(run_id=run.pk) == batches.PENDING
    retry = BatchJob.objects.get(run=run, attempt=2)
    assert (retry.resubmission, retry.request_count) == (False, 4)
    run = finish(run)
    assert (run.status, run.samples_done, run.error) == ("succeeded", 4, "")


def test_cancelling_a_batch_run_cancels_the_open_batch(pairs, published, openai_config, fake_openai):
    run = start(published, openai_config())
    labeling_run_batch_submit(run_id=run.pk)
    labeling_run_cancel(run=run)
    job = BatchJob.objects.get(run=run)
    assert (job.status, job.openai_status) == ("cancelled", "cancelled")
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test-key")
    assert client.batches.retrieve(job.openai_batch_id).status == "cancelled"
    assert labeling_run_batch_poll(run_id=run.pk) == "run is cancelled"


def test_the_tasks_poll_until_the_batch_is_done(pairs, published, openai_config, fake_openai, monkeypatch, settings):
    settings.LABELING_BATCH_POLL_SECONDS = 7
    scheduled = []
    monkeypatch.setattr(
        tasks.labeling_run_batch_poll, "apply_async", lambda args, countdown: scheduled.append((args, countdown))
    )
    run = start(published, openai_config())
    assert tasks.labeling_run_batch_submit.run(run.pk) == batches.PENDING
    assert scheduled == [((run.pk,), 7)]
    assert tasks.labeling_run_batch_poll.run(run.pk) == batches.PENDING
    assert tasks.labeling_run_batch_poll.run(run.pk) == "done"
    assert len(scheduled) == 2
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_batch_mode_needs_an_openai_teacher(pairs, published, make_config):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="openai provider"):
        start(published, make_config("rules", provider="heuristic"))
    assert LabelingRun.objects.count() == 0


def test_the_browser_form_starts_a_batch_run_and_the_page_shows_the_batch(
    pairs, published, openai_config, fake_openai, engineer, client_for, django_capture_on_commit_callbacks
):
    config = openai_config()
    client = client_for(engineer)
    form = {"version": published.pk, "config": config.pk, "min_vote_share": 0.8, "min_confidence": 0.7,
            "chunk_size": 500, "mode": "batch", "start": "1"}  # fmt: skip
    with django_capture_on_commit_callbacks() as queued:
        response = client.post("/runs/new/", form)
    run = LabelingRun.objects.get()
    assert response.status_code == 302 and run.mode == "batch" and len(queued) == 1
    assert "Not submitted yet." in client.get(response.url, HTTP_HX_REQUEST="true").content.decode()
    labeling_run_batch_submit(run_id=run.pk)
    progress = client.get(response.url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-batch-status="submitted"' in progress and "of 4" in progress
    finish(run)
    page = client.get(response.url).content.decode()
    assert 'data-batch-status="completed"' in page and 'id="count-done">4<' in page
    assert client.post("/runs/new/", {**form, "mode": "carrier-pigeon"}).status_code == 400


def test_the_api_and_the_cli_start_batch_runs(pairs, published, openai_config, fake_openai, engineer, client):
    openai_config("api-teacher")
    token = policy_services.api_token_create(user=engineer, name="pipeline").raw
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    body = {"policy": published.policy.slug, "version": 1, "teacher": "api-teacher", "mode": "batch"}
    created = client.post("/api/runs", body, content_type="application/json", **auth)
    assert created.status_code == 201 and (created.json()["mode"], created.json()["batches"]) == ("batch", [])
    run = LabelingRun.objects.get()
    labeling_run_batch_submit(run_id=run.pk)
    finish(run)
    status = client.get(f"/api/runs/{run.pk}", **auth).json()
    assert status["status"] == "succeeded"
    assert [(b["attempt"], b["status"], b["request_count"]) for b in status["batches"]] == [(1, "completed", 4)]
    bad = client.post("/api/runs", {**body, "mode": "later"}, content_type="application/json", **auth)
    assert bad.status_code == 400 and "mode must be one of" in bad.json()["detail"]

    call_command("start_run", policy=published.policy.slug, version=1, teacher="api-teacher", batch=True)
    assert LabelingRun.objects.order_by("-pk").first().mode == "batch"


def test_the_batch_price_factor_prices_the_run_and_its_plan(pairs, published, openai_config, fake_openai):
    from labeling.selectors.planning import run_plan

    prices = {"price_input_per_mtok": Decimal("2"), "price_output_per_mtok": Decimal("8")}
    config = openai_config(batch_price_factor=Decimal("0.25"), **prices)
    online = run_plan(version=published, config=config, selection={"all": True})
    batch = run_plan(version=published, config=config, selection={"all": True}, mode="batch")
    assert online.price_factor == 1 and batch.price_factor == Decimal("0.25")
    # both are rounded to 0.0001 after pricing, so a quarter of the rounded online cost may be half a unit off
    assert batch.estimated_cost > 0 and abs(batch.estimated_cost - online.estimated_cost / 4) <= Decimal("0.0001")

    run = start(published, config)
    labeling_run_batch_submit(run_id=run.pk)
    run = finish(run)
    expected = (Decimal(run.input_tokens) * 2 + Decimal(run.output_tokens) * 8) / 4 / 1_000_000
    assert run.cost > 0 and float(run.cost) == pytest.approx(float(expected), abs=1e-6)  # stored with 6 decimals


def test_a_batch_price_factor_outside_0_to_1_is_refused(make_config):
    from django.core.exceptions import ValidationError

    config = make_config("discounted")
    for bad in ("0", "1.5"):
        config.batch_price_factor = Decimal(bad)
        with pytest.raises(ValidationError, match="batch_price_factor"):
            config.full_clean()


def test_a_batch_over_the_input_file_limit_fails_the_run_clearly_without_uploading(
    pairs, published, openai_config, fake_openai, monkeypatch
):
    monkeypatch.setattr(batches, "BATCH_MAX_BYTES", 4_000)  # four requests of ~2 KB each
    run = start(published, openai_config())
    outcome = labeling_run_batch_submit(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and outcome.startswith("failed")
    assert "MB; the OpenAI Batch API takes at most" in run.error and "smaller runs" in run.error
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test-key")
    assert list(client.batches.list()) == [] and not BatchJob.objects.exists()


def test_more_requests_than_one_batch_takes_are_refused_when_the_run_is_created(
    pairs, published, openai_config, monkeypatch
):
    from django.core.exceptions import ValidationError

    monkeypatch.setattr(batches, "BATCH_MAX_REQUESTS", 7)
    with pytest.raises(ValidationError, match="at most 7 requests"):
        start(published, openai_config(samples_per_pair=2))
    assert LabelingRun.objects.count() == 0


def test_a_submitter_that_dies_after_creating_the_batch_does_not_submit_twice(
    pairs, published, openai_config, fake_openai, monkeypatch
):
    run = start(published, openai_config())
    record = batches._record

    def die_before_recording(*args, **kwargs):
        raise SystemExit("worker killed between batches.create and saving the BatchJob")

    monkeypatch.setattr(batches, "_record", die_before_recording)
    with pytest.raises(SystemExit):
        labeling_run_batch_submit(run_id=run.pk)
    assert not BatchJob.objects.exists()  # the transaction died with the worker
    monkeypatch.setattr(batches, "_record", record)

    assert labeling_run_batch_submit(run_id=run.pk) == batches.PENDING  # the re-delivered task
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test-key")
    created = list(client.batches.list())
    assert len(created) == 1 and created[0].metadata["policyhub_run"] == str(run.pk)
    assert BatchJob.objects.get(run=run).openai_batch_id == created[0].id
    assert finish(run).status == "succeeded" and run.samples_done == 4


def test_a_batch_of_another_run_or_attempt_is_not_taken_for_ours(pairs, published, openai_config, fake_openai):
    first = start(published, openai_config())
    labeling_run_batch_submit(run_id=first.pk)
    second = start(published, openai_config("other"))
    labeling_run_batch_submit(run_id=second.pk)
    jobs = BatchJob.objects.order_by("run_id")
    assert len({job.openai_batch_id for job in jobs}) == 2
