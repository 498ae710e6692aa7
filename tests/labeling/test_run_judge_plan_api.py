"""The judge before and after paying: the plan shows its estimated cost on its own line and in the total (free
once its verdicts are cached), the run page shows the judge and what it cost, and the API accepts a judge by name
or id, returns it with its counters, and refuses one that cannot judge with a 4xx and a message."""

import json
from decimal import Decimal

import pytest

from labeling.models import LabelingRun
from labeling.selectors.planning import VERDICT_TOKENS, run_plan
from labeling.services import labeling_run_create
from policyhub import services as policy_services

from .conftest import answer

PRICES = {"price_input_per_mtok": Decimal("2"), "price_output_per_mtok": Decimal("8")}


def test_the_plan_counts_the_judge_on_its_own_line_and_in_the_total(
    pairs, published, openai_config, fake_openai, process_run
):
    teacher, judge = openai_config(samples_per_pair=2, **PRICES), openai_config("judge", model="fake-judge", **PRICES)
    without = run_plan(version=published, config=teacher, selection={"all": True})
    plan = run_plan(version=published, config=teacher, selection={"all": True}, judge=judge)
    assert without.judge is None and without.estimated_cost == without.teacher_estimated_cost > 0
    assert plan.teacher_estimated_cost == without.estimated_cost
    assert (plan.judge.config, plan.judge.requests, plan.judge.cached_share) == ("judge", 8, 0.0)
    assert plan.judge.output_tokens_per_request == VERDICT_TOKENS
    assert plan.judge.token_basis.startswith("rule of thumb")
    assert plan.judge.estimated_cost > 0
    assert plan.estimated_cost == plan.teacher_estimated_cost + plan.judge.estimated_cost
    assert fake_openai.chat_requests() == []

    fake_openai.responder = answer("strong_match")
    run = process_run(labeling_run_create(version=published, config=teacher, selection={"all": True}, judge=judge))
    # the rule of thumb was near what the judge's requests really held (an answer of average length stood in)
    paid = run.judge_requests - run.judge_cached
    assert paid == 4 and abs(plan.judge.input_tokens_per_request - run.judge_input_tokens / paid) < 0.3 * (
        run.judge_input_tokens / paid
    )
    again = run_plan(version=published, config=teacher, selection={"all": True}, judge=judge)
    # the teacher's answers and the judge's verdicts on them are cached: the same run would cost nothing
    assert (again.cached_share, again.judge.cached_share, again.estimated_cost) == (1.0, 1.0, 0)
    # and the judge's earlier requests calibrate its token counts
    assert again.judge.token_basis.startswith("provider counts of 4 earlier judge requests")
    assert again.judge.output_tokens_per_request == round(run.judge_output_tokens / 4)


def test_the_plan_and_run_pages_show_the_judge_and_its_cost(
    pairs, published, openai_config, fake_openai, engineer, client_for, process_run, django_capture_on_commit_callbacks
):
    teacher, judge = openai_config(**PRICES), openai_config("judge", **PRICES)
    client = client_for(engineer)
    form = {"version": published.pk, "config": teacher.pk, "judge": judge.pk, "min_vote_share": 0.8,
            "min_confidence": 0.7, "chunk_size": 500}  # fmt: skip
    page = client.post("/runs/new/", {**form, "plan": "1"})
    assert page.status_code == 200
    plan = page.context["plan"]
    text = page.content.decode()
    assert f"${plan.judge.estimated_cost}" in _cell(text, "plan-judge-cost")
    assert f"${plan.teacher_estimated_cost}" in _cell(text, "plan-teacher-cost")
    assert f"${plan.estimated_cost}" in _cell(text, "plan-cost") and "(teacher + judge)" in text

    fake_openai.responder = answer("strong_match")
    with django_capture_on_commit_callbacks(execute=False):
        started = client.post("/runs/new/", {**form, "start": "1"})
    run = process_run(LabelingRun.objects.get())
    assert started.status_code == 302 and run.judge_config == judge and run.judge_cost > 0
    detail = client.get(f"/runs/{run.pk}/").content.decode()
    assert "judge: judge (fake-teacher)" in _cell(detail, "run-judge")
    assert f"${run.judge_cost:.4f}" in _cell(detail, "count-judge-cost")
    assert "4 (0 cached, 0 unreadable)" in _cell(detail, "count-judged")

    heuristic = openai_config("baseline", provider="heuristic")
    refused = client.post("/runs/new/", {**form, "judge": heuristic.pk, "plan": "1"})
    assert refused.status_code == 400 and "judge" in refused.context["form"].errors
    batch = client.post("/runs/new/", {**form, "mode": "batch", "plan": "1"})
    assert batch.status_code == 400 and "A judge judges online runs only" in batch.content.decode()
    assert LabelingRun.objects.count() == 1


def _cell(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</", start)]


@pytest.fixture
def api(client, engineer):
    token = policy_services.api_token_create(user=engineer, name="pipeline").raw

    def call(method, path, body=None):
        kwargs = {"data": json.dumps(body), "content_type": "application/json"} if body is not None else {}
        return getattr(client, method)(path, HTTP_AUTHORIZATION=f"Bearer {token}", **kwargs)

    return call


def test_the_api_starts_a_judged_run_and_returns_its_judge(
    pairs, published, openai_config, fake_openai, api, process_run, django_capture_on_commit_callbacks
):
    openai_config(**PRICES)
    judge = openai_config("judge", **PRICES)
    body = {"policy": "match", "version": 1, "teacher": "fake"}
    plan = api("post", "/api/runs/plan", {**body, "judge": "judge"})
    assert plan.status_code == 200, plan.content
    planned = plan.json()
    assert planned["judge"]["config"] == "judge" and Decimal(planned["judge"]["estimated_cost"]) > 0
    assert Decimal(planned["estimated_cost"]) == Decimal(planned["teacher_estimated_cost"]) + Decimal(
        planned["judge"]["estimated_cost"]
    )
    assert api("post", "/api/runs/plan", body).json()["judge"] is None

    fake_openai.responder = answer("strong_match")
    with django_capture_on_commit_callbacks(execute=False):
        created = api("post", "/api/runs", {**body, "judge": judge.pk})  # by id as well as by name
    assert created.status_code == 201, created.content
    assert created.json()["judge"] == "judge" and created.json()["judge_cost"] == "0.000000"
    process_run(LabelingRun.objects.get(pk=created.json()["id"]))
    read = api("get", f"/api/runs/{created.json()['id']}").json()
    assert read["judge"] == "judge" and read["judge_requests"] == 4 and Decimal(read["judge_cost"]) > 0
    assert read["judge_input_tokens"] > 0 and read["cost"] != read["judge_cost"]
    candidates = api("get", f"/api/runs/{read['id']}/candidates").json()
    assert [c["trust"]["judge_verdict"] for c in candidates] == [{"ok": True, "detail": ""}] * 4

    plain = api("post", "/api/runs", body).json()
    assert plain["judge"] is None and plain["judge_requests"] == 0


@pytest.mark.parametrize(
    ("judge", "extra", "status", "message"),
    [
        ("nobody", {}, 404, "No teacher config 'nobody' to judge with."),
        (999_999, {}, 404, "No teacher config 999999 to judge with."),
        ("baseline", {}, 400, "The judge must be an LLM teacher config (the openai provider); 'baseline' is"),
        ("judge", {"mode": "batch"}, 400, "A judge judges online runs only"),
    ],
)
def test_the_api_refuses_a_judge_that_cannot_judge(pairs, published, openai_config, api, judge, extra, status, message):
    openai_config()
    openai_config("judge")
    openai_config("baseline", provider="heuristic")
    body = {"policy": "match", "version": 1, "teacher": "fake", "judge": judge, **extra}
    for path in ("/api/runs", "/api/runs/plan"):
        response = api("post", path, body)
        assert response.status_code == status and message in response.json()["detail"], response.content
    assert LabelingRun.objects.count() == 0


def test_start_run_plans_and_starts_a_judged_run(pairs, published, openai_config, django_capture_on_commit_callbacks):
    from io import StringIO

    from django.core.management import CommandError, call_command

    openai_config(**PRICES)
    openai_config("judge", **PRICES)
    out = StringIO()
    call_command("start_run", policy="match", version=1, teacher="fake", judge="judge", plan=True, stdout=out)
    plan = run_plan(version=published, config=_config("fake"), selection={"all": True}, judge=_config("judge"))
    assert "Judge judge: 4 requests" in out.getvalue() and f"total ≈ ${plan.estimated_cost}." in out.getvalue()
    with pytest.raises(CommandError, match="No teacher config 'nope' to judge with."):
        call_command("start_run", policy="match", version=1, teacher="fake", judge="nope", stdout=StringIO())
    with django_capture_on_commit_callbacks(execute=False):
        call_command("start_run", policy="match", version=1, teacher="fake", judge="judge", stdout=StringIO())
    assert LabelingRun.objects.get().judge_config == _config("judge")


def _config(name):
    from labeling.models import TeacherConfig

    return TeacherConfig.objects.get(name=name)
