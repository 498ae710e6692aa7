"""Prompt caching, through the real openai client and the fake server (which reports
``usage.prompt_tokens_details.cached_tokens`` for the prompt prefix it has seen before): the run records the
cached tokens and prices them at the config's cached-input price (the input price when it has none), the policy
comes first in every request so the cache can serve it, and the plan, the run page and the API show input,
cached input and output tokens with their cost apart, and the cost per 1,000 labelled pairs."""

import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from labeling.selectors.planning import run_plan
from labeling.services import labeling_run_create
from policyhub import services as policy_services
from policyhub.prompts import system_prompt
from tests.fakes.openai_server import is_judge_request

from .conftest import answer

MILLION = Decimal(1_000_000)
PRICES = {"price_input_per_mtok": Decimal("2"), "price_output_per_mtok": Decimal("8")}


@pytest.fixture
def api(client, engineer):
    token = policy_services.api_token_create(user=engineer, name="pipeline").raw

    def call(method, path, body=None):
        kwargs = {"data": json.dumps(body), "content_type": "application/json"} if body is not None else {}
        return getattr(client, method)(path, HTTP_AUTHORIZATION=f"Bearer {token}", **kwargs)

    return call


def _cell(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</", start)]


def _listed(run, input_price, cached_price, output_price) -> Decimal:
    uncached = run.input_tokens - run.cached_input_tokens
    return (uncached * input_price + run.cached_input_tokens * cached_price + run.output_tokens * output_price) / (
        MILLION
    )


def _close(stored: Decimal, expected: Decimal) -> bool:
    """The run's cost is stored with 6 decimal places, added up per write."""
    return abs(stored - expected) <= Decimal("0.000002")


def test_a_run_records_its_cached_prompt_tokens_and_pays_the_cached_price_for_them(
    pairs, published, openai_config, fake_openai, engineer, client_for, api, process_run
):
    config = openai_config(**PRICES, price_cached_input_per_mtok=Decimal("0.5"))
    fake_openai.responder = answer("strong_match")
    run = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    assert run.status == "succeeded" and run.samples_done == 4

    # the policy comes first, the same in every request; the pair comes after it
    sent = fake_openai.chat_requests()
    policy = system_prompt(published)
    assert len(sent) == 4 and all(r["messages"][0] == {"role": "system", "content": policy} for r in sent)
    assert all("Data engineer" not in r["messages"][0]["content"] for r in sent)
    assert sum("Data engineer" in r["messages"][-1]["content"] for r in sent) == 2  # m1's two pairs
    # every request after the first found at least the policy in the fake's prompt cache
    assert run.cached_input_tokens >= 3 * int(len(policy) / fake_openai.chars_per_token)
    assert run.cached_input_tokens < run.input_tokens

    assert _close(run.cost, _listed(run, 2, Decimal("0.5"), 8))
    assert run.cost < _listed(run, 2, 2, 8) - Decimal("0.000002")  # cheaper than paying the input price for everything

    page = client_for(engineer).get(f"/runs/{run.pk}/").content.decode()
    uncached = run.input_tokens - run.cached_input_tokens
    assert f"{uncached} · ${uncached * 2 / MILLION:.4f}" in _cell(page, "cost-input")
    cached_cost = run.cached_input_tokens * Decimal("0.5") / MILLION
    assert f"{run.cached_input_tokens} · ${cached_cost:.4f}" in _cell(page, "cost-cached-input")
    assert f"{run.output_tokens} · ${run.output_tokens * 8 / MILLION:.4f}" in _cell(page, "cost-output")
    assert f"${run.cost * 1000 / 4:.4f}" in _cell(page, "count-cost-per-1000")

    read = api("get", f"/api/runs/{run.pk}").json()
    assert read["cached_input_tokens"] == run.cached_input_tokens
    assert Decimal(read["costs"]["cached_input"]) == cached_cost.quantize(Decimal("0.000001"))
    assert Decimal(read["costs"]["input"]) == (uncached * 2 / MILLION).quantize(Decimal("0.000001"))
    assert Decimal(read["cost_per_1000_pairs"]) == (run.cost * 1000 / 4).quantize(Decimal("0.0001"))


def test_without_a_cached_price_cached_tokens_pay_the_input_price(
    pairs, published, openai_config, fake_openai, process_run
):
    config = openai_config(**PRICES)  # no cached-input price
    fake_openai.responder = answer("strong_match")
    run = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    assert run.cached_input_tokens > 0
    assert _close(run.cost, _listed(run, 2, 2, 8))


def test_a_provider_without_prompt_caching_records_no_cached_tokens(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.prompt_cache = False
    config = openai_config(**PRICES, price_cached_input_per_mtok=Decimal("0.5"))
    fake_openai.responder = answer("strong_match")
    run = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    assert run.input_tokens > 0 and run.cached_input_tokens == 0
    assert _close(run.cost, _listed(run, 2, 2, 8))


def test_the_judge_counts_its_cached_prompt_tokens(pairs, published, openai_config, fake_openai, process_run):
    teacher = openai_config(**PRICES)
    judge = openai_config("judge", model="fake-judge", **PRICES, price_cached_input_per_mtok=Decimal("1"))
    fake_openai.responder = answer("strong_match")
    run = process_run(labeling_run_create(version=published, config=teacher, selection={"all": True}, judge=judge))
    assert sum(is_judge_request(r) for r in fake_openai.chat_requests()) == 4
    assert 0 < run.judge_cached_input_tokens < run.judge_input_tokens
    uncached = run.judge_input_tokens - run.judge_cached_input_tokens
    assert _close(
        run.judge_cost, (uncached * 2 + run.judge_cached_input_tokens + run.judge_output_tokens * 8) / MILLION
    )


def test_the_plan_shows_input_cached_input_and_output_and_the_cost_per_1000_pairs(
    pairs, published, openai_config, fake_openai, engineer, client_for, api, process_run
):
    config = openai_config(**PRICES, price_cached_input_per_mtok=Decimal("0.5"))
    before = run_plan(version=published, config=config, selection={"all": True})
    # the test policy is far shorter than the 1,024 tokens OpenAI caches at least, and no run has measured any
    assert before.estimated_cached_input_tokens == 0 and before.cached_input_basis.startswith("none")

    fake_openai.responder = answer("strong_match")
    run = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    # the same model at another temperature: none of its answers are in the response cache yet
    other = openai_config("other", temperature=0.5, **PRICES, price_cached_input_per_mtok=Decimal("0.5"))
    plan = run_plan(version=published, config=other, selection={"all": True})
    share = run.cached_input_tokens / run.input_tokens
    assert plan.cached_share == 0 and plan.estimated_cached_input_tokens == round(plan.estimated_input_tokens * share)
    assert "as in 1 earlier runs" in plan.cached_input_basis
    parts = plan.teacher_costs
    assert parts.cached_input == plan.estimated_cached_input_tokens * Decimal("0.5") / MILLION
    assert parts.input == plan.uncached_input_tokens * 2 / MILLION
    assert plan.estimated_cost == parts.total.quantize(Decimal("0.0001"))
    assert plan.cost_per_1000_pairs == (plan.estimated_cost * 1000 / 4).quantize(Decimal("0.0001"))

    form = {"version": published.pk, "config": other.pk, "min_vote_share": 0.8, "min_confidence": 0.7,
            "chunk_size": 500, "plan": "1"}  # fmt: skip
    page = client_for(engineer).post("/runs/new/", form).content.decode()
    assert f"{plan.estimated_cached_input_tokens} tokens · ${parts.cached_input:.4f}" in _cell(
        page, "plan-cached-input"
    )
    assert f"{plan.uncached_input_tokens} tokens · ${parts.input:.4f}" in _cell(page, "plan-input")
    assert f"${plan.cost_per_1000_pairs}" in _cell(page, "plan-cost-per-1000")

    planned = api("post", "/api/runs/plan", {"policy": "match", "version": 1, "teacher": "other"}).json()
    assert planned["estimated_cached_input_tokens"] == plan.estimated_cached_input_tokens
    assert Decimal(planned["teacher_costs"]["cached_input"]) == parts.cached_input.quantize(Decimal("0.000001"))
    assert Decimal(planned["cost_per_1000_pairs"]) == plan.cost_per_1000_pairs

    out = io.StringIO()
    call_command("start_run", policy="match", version=1, teacher="other", plan=True, stdout=out)
    assert f"≈ {plan.estimated_cached_input_tokens} tokens from the provider's prompt cache" in out.getvalue()
    assert f"≈ ${plan.cost_per_1000_pairs} per 1,000 labelled pairs" in out.getvalue()
