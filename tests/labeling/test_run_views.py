"""Teacher configs and runs in the browser and the API (the chunks run in-process; see test_run_worker_kill.py
for the real worker)."""

import html
import re

import pytest

from labeling.models import LabelingRun, TeacherConfig
from policyhub import services as policy_services

from .conftest import answer


@pytest.mark.parametrize("url", ["/teachers/", "/runs/", "/runs/new/"])
@pytest.mark.parametrize(("who", "expected"), [("annotator", 403), ("owner", 403), ("engineer", 200)])
def test_run_pages_are_for_ml_engineers(db, request, client_for, url, who, expected):
    assert client_for(request.getfixturevalue(who)).get(url).status_code == expected


def test_an_engineer_creates_a_teacher_config_and_bad_values_are_shown(engineer, client_for):
    client = client_for(engineer)
    form = {
        "name": "gpt-small", "provider": "openai", "model": "gpt-4o-mini", "base_url": "",
        "api_key_name": "openai",
        "temperature": "0.7", "samples_per_pair": "3", "top_logprobs": "5", "price_input_per_mtok": "0.15",
        "price_output_per_mtok": "0.6", "concurrency": "16", "request_timeout": "60", "max_attempts": "5",
    }  # fmt: skip
    assert client.post("/teachers/", form).status_code == 302
    assert TeacherConfig.objects.get(name="gpt-small").created_by == engineer
    bad = client.post("/teachers/", {**form, "name": "other", "temperature": "3"})
    assert bad.status_code == 400 and TeacherConfig.objects.filter(name="other").count() == 0
    assert "temperature" in bad.context["form"].errors or bad.context["form"].non_field_errors()
    assert TeacherConfig.objects.get(name="gpt-small").batch_price_factor == 0.5  # left empty: the Batch API's half
    free = client.post("/teachers/", {**form, "name": "free", "batch_price_factor": "0"})
    assert free.status_code == 400 and "batch_price_factor" in free.context["form"].errors
    assert client.post("/teachers/", {**form, "name": "quarter", "batch_price_factor": "0.25"}).status_code == 302
    assert str(TeacherConfig.objects.get(name="quarter").snapshot()["batch_price_factor"]) == "0.250"


def test_planning_shows_the_prompt_and_cost_without_asking_the_teacher(
    pairs, published, openai_config, fake_openai, engineer, client_for
):
    config = openai_config(samples_per_pair=3, price_input_per_mtok="1000")
    response = client_for(engineer).post(
        "/runs/new/",
        {"version": published.pk, "config": config.pk, "min_vote_share": 0.8, "min_confidence": 0.7,
         "chunk_size": 500, "plan": "1"},
    )  # fmt: skip
    assert response.status_code == 200
    plan = response.context["plan"]
    assert (plan.pairs, plan.requests, plan.samples_per_request) == (4, 4, 3) and plan.estimated_cost > 0
    page = response.content.decode()
    assert "One request as the teacher will receive it" in page and "&lt;member&gt;" in page
    assert "the 3 samples of a pair in one request: the prompt is paid once" in page
    assert fake_openai.chat_requests() == [] and LabelingRun.objects.count() == 0


def test_starting_a_run_in_the_browser_then_watching_it(
    pairs, published, openai_config, fake_openai, engineer, client_for, process_run, django_capture_on_commit_callbacks
):
    fake_openai.responder = answer("partial_match", probs={"partial_match": 0.5, "strong_match": 0.5})
    config = openai_config(logprobs=True)
    client = client_for(engineer)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            "/runs/new/",
            {"version": published.pk, "config": config.pk, "min_vote_share": 0.8, "min_confidence": 0.7,
             "chunk_size": 2, "start": "1"},
        )  # fmt: skip
    run = LabelingRun.objects.get()
    assert response.status_code == 302 and response.url == f"/runs/{run.pk}/" and len(queued) == 1
    progress = client.get(response.url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in progress and 'id="count-done">0<' in progress
    process_run(run)
    page = client.get(response.url).content.decode()
    assert 'id="count-done">4<' in page and 'id="count-review">4<' in page and "every 2s" not in page
    low = 'reason=low_confidence">low_confidence</a>: <span class="reason-count">4</span>'
    assert low in page
    assert page.count('data-routing="needs_review"') == 4


def test_cancel_and_resume_buttons(pairs, published, openai_config, engineer, client_for):
    from labeling.services import labeling_run_create

    run = labeling_run_create(version=published, config=openai_config(), selection={"all": True})
    client = client_for(engineer)
    client.post(f"/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == "cancelled"
    again = client.post(f"/runs/{run.pk}/cancel/", follow=True)
    assert "only a queued or running run can be cancelled" in again.content.decode()
    client.post(f"/runs/{run.pk}/resume/")
    run.refresh_from_db()
    assert run.status == "running"


def test_api_run_with_idempotency_key_plan_progress_and_candidates(
    pairs, published, openai_config, fake_openai, engineer, client, process_run
):
    fake_openai.responder = answer("strong_match")
    openai_config("api-teacher")
    token = policy_services.api_token_create(user=engineer, name="pipeline").raw
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    body = {"policy": published.policy.slug, "version": 1, "teacher": "api-teacher", "selection": {"all": True}}
    plan = client.post("/api/runs/plan", body, content_type="application/json", **auth)
    assert plan.status_code == 200 and plan.json()["requests"] == 4

    created = client.post("/api/runs", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1", **auth)
    repeated = client.post("/api/runs", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1", **auth)
    assert (created.status_code, repeated.status_code) == (201, 200)
    assert created.json()["id"] == repeated.json()["id"] and LabelingRun.objects.count() == 1

    process_run(LabelingRun.objects.get())
    status = client.get(f"/api/runs/{created.json()['id']}", **auth).json()
    assert (status["status"], status["samples_done"], status["routing"]["auto_accepted"]) == ("succeeded", 4, 4)
    rows = client.get(f"/api/runs/{created.json()['id']}/candidates?routing=auto_accepted", **auth).json()
    assert len(rows) == 4 and {r["label"] for r in rows} == {"strong_match"}

    missing = client.post("/api/runs", {**body, "teacher": "nope"}, content_type="application/json", **auth)
    assert missing.status_code == 404 and "No teacher config" in missing.json()["detail"]
    bad = client.post("/api/runs", {**body, "selection": {"everything": 1}}, content_type="application/json", **auth)
    assert bad.status_code == 400 and "Choose the pairs" in bad.json()["detail"]
    draft = client.post("/api/runs", {**body, "version": 2}, content_type="application/json", **auth)
    assert draft.status_code == 400 and "published version" in draft.json()["detail"]


def test_api_runs_refuse_annotators(annotator, client):
    token = policy_services.api_token_create(user=annotator, name="t").raw
    response = client.get("/api/runs/1", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403


def test_the_candidate_table_refreshes_live_while_the_run_progresses(
    pairs, published, openai_config, fake_openai, engineer, annotator, client_for
):
    from labeling.services import labeling_run_chunk_process, labeling_run_create

    fake_openai.responder = answer("partial_match", probs={"partial_match": 0.5, "strong_match": 0.5})
    run = labeling_run_create(
        version=published, config=openai_config(logprobs=True), selection={"all": True}, chunk_size=2
    )
    client = client_for(engineer)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    poll = re.search(r'id="run-candidates" hx-get="([^"]+)" hx-trigger="every 3s"', page)
    assert poll, "an active run's page polls its candidate table"
    url = html.unescape(poll.group(1))
    assert url.startswith(f"/runs/{run.pk}/candidates/?routing=needs_review")
    assert client.get(url).status_code == 204  # nothing written yet: htmx keeps the table as it is

    labeling_run_chunk_process(run_id=run.pk, chunk_index=0)  # the first 2 of 4 pairs
    partial = client.get(url)
    assert partial.status_code == 200
    body = partial.content.decode()
    assert body.count('data-routing="needs_review"') == 2 and "low_confidence" in body
    assert 'hx-trigger="every 3s"' in body  # still running: keeps polling, now from what it shows
    again = html.unescape(re.search(r'hx-get="([^"]+)"', body).group(1))
    assert again != url and client.get(again).status_code == 204

    labeling_run_chunk_process(run_id=run.pk, chunk_index=1)
    final = client.get(again).content.decode()
    assert final.count('data-routing="needs_review"') == 4
    assert "hx-get" not in final  # the run ended: polling stops
    assert client.get(f"/runs/{run.pk + 1000}/candidates/").status_code == 404
    assert client_for(annotator).get(url).status_code == 403


def test_the_candidate_poll_keeps_the_chosen_tab_and_filter(pairs, published, openai_config, engineer, client_for):
    from labeling.services import labeling_run_create

    run = labeling_run_create(version=published, config=openai_config(), selection={"all": True})
    page = client_for(engineer).get(f"/runs/{run.pk}/?routing=auto_accepted&reason=low_confidence").content.decode()
    assert "candidates/?routing=auto_accepted&amp;reason=low_confidence&amp;seen=running%3A0" in page
