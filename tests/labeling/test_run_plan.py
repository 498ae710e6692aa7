"""Plan token estimates: calibrated on the provider's real counts for the same model when earlier answers exist,
else 4 characters per token; the plan says which."""

from labeling.selectors.planning import ANSWER_TOKENS, run_plan
from labeling.services import labeling_run_create

from .conftest import answer


def plan(published, config):
    return run_plan(version=published, config=config, selection={"all": True})


def request_chars(result) -> float:
    return sum(len(m["content"]) for m in result.example_messages)


def test_without_earlier_answers_the_plan_uses_four_characters_per_token(pairs, published, openai_config):
    result = plan(published, openai_config())
    assert result.token_basis.startswith("rule of thumb: 4 characters per token")
    assert result.output_tokens_per_request == ANSWER_TOKENS
    # all sampled pairs have about the same size; the first one is the example
    assert abs(result.input_tokens_per_request - request_chars(result) / 4) < 0.1 * request_chars(result) / 4


def test_earlier_answers_of_the_same_model_calibrate_the_plan(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.chars_per_token = 2.5  # this provider's tokenizer: far from the rule of thumb
    fake_openai.responder = answer("strong_match", rationale="Python and SQL match the posting well enough here.")
    config = openai_config(temperature=0.3)
    process_run(labeling_run_create(version=published, config=config, selection={"all": True}))

    other_temperature = openai_config("same-model", temperature=0.9)  # nothing cached: every request billable
    result = plan(published, other_temperature)
    assert result.token_basis.startswith("provider counts: 2.5")
    assert "measured on 4 answers from the latest runs of this model" in result.token_basis
    assert abs(result.input_tokens_per_request - request_chars(result) / 2.5) < 0.1 * request_chars(result) / 2.5
    answer_chars = len('{"label": "strong_match", "rationale": "Python and SQL match the posting well enough here.", '
                       '"cited_rules": ["R1"]}')  # fmt: skip
    assert result.output_tokens_per_request == int(answer_chars / 2.5)
    assert result.estimated_input_tokens == 4 * result.input_tokens_per_request

    another_model = plan(published, openai_config("bigger", model="another-model"))
    assert another_model.token_basis.startswith("rule of thumb")


def test_the_plan_page_shows_the_basis(pairs, published, openai_config, engineer, client_for):
    config = openai_config()
    form = {"version": published.pk, "config": config.pk, "min_vote_share": 0.8, "min_confidence": 0.7,
            "chunk_size": 500, "mode": "batch", "plan": "1"}  # fmt: skip
    page = client_for(engineer).post("/runs/new/", form).content.decode()
    assert "rule of thumb: 4 characters per token" in page and "Batch API price: 0.500" in page
