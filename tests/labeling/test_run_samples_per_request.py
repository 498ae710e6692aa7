"""K samples for the price of one prompt: a pair's K samples are one request with ``n = K`` where the endpoint
takes it, one request per sample where it refuses or ignores ``n > 1`` (found out once, remembered on the
config). Answers, cache entries and samples stay per sample index; the run bills what the provider reported."""

from decimal import Decimal

from django.urls import reverse

from labeling.models import ResponseCache, TeacherConfig, TeacherSample
from labeling.selectors.planning import run_plan
from labeling.services import labeling_run_create

from .conftest import answer


def start(published, config):
    return labeling_run_create(version=published, config=config, selection={"all": True})


def teacher_ns(fake) -> list[int]:
    return [int(body.get("n") or 1) for body in fake.chat_requests()]


def assert_billed_exactly(run, fake):
    """The run's counters and its samples hold what the fake reported: each prompt once, every output."""
    billed = fake.billed()
    samples = list(TeacherSample.objects.filter(run=run, cached=False))  # cached samples were paid by another run
    assert (run.input_tokens, run.cached_input_tokens, run.output_tokens) == (
        billed["prompt"], billed["cached"], billed["completion"],
    )  # fmt: skip
    assert sum(s.input_tokens for s in samples) == billed["prompt"]
    assert sum(s.output_tokens for s in samples) == billed["completion"]


def test_a_pairs_k_samples_are_one_request_and_its_prompt_is_billed_once(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.responder = answer("strong_match")
    config = openai_config(samples_per_pair=5, price_input_per_mtok=Decimal("2"), price_output_per_mtok=Decimal("8"))
    run = process_run(start(published, config))
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", 20, 0)
    assert teacher_ns(fake_openai) == [5] * len(pairs)  # one request per pair, not 5
    assert_billed_exactly(run, fake_openai)
    assert (
        run.cost == (Decimal(run.input_tokens) * 2 + Decimal(run.output_tokens) * 8) / 1_000_000
    )  # no cached-input price: cached tokens at the input price
    # the prompt is on the first sample of the request, the outputs are shared by the five
    for pair in pairs:
        samples = list(TeacherSample.objects.filter(run=run, pair=pair).order_by("sample_index"))
        assert [s.sample_index for s in samples] == [0, 1, 2, 3, 4]
        assert samples[0].input_tokens > 0 and all(s.input_tokens == 0 for s in samples[1:])
        assert all(s.output_tokens > 0 and s.attempts == 1 for s in samples)
    # the endpoint took n > 1: remembered, so later runs need not find out again
    config.refresh_from_db()
    assert config.n_supported is True and config.n_checked_at is not None

    # the same pairs one sample per request (an endpoint that refuses n) pay the prompt five times
    fake_openai.reset()
    fake_openai.n_mode, fake_openai.responder = "refuse", answer("strong_match")
    ResponseCache.objects.all().delete()
    one_by_one = process_run(start(published, openai_config("one-by-one", samples_per_pair=5)))
    assert one_by_one.samples_done == 20
    assert one_by_one.input_tokens == 5 * run.input_tokens
    # the same answers: the same output, but for the fake's rounding of each response's characters to tokens
    assert abs(one_by_one.output_tokens - run.output_tokens) <= 5 * len(pairs)


def test_an_endpoint_refusing_n_is_found_out_once_and_remembered_for_later_runs(
    pairs, published, openai_config, fake_openai, process_run, engineer, client_for
):
    fake_openai.n_mode = "refuse"
    fake_openai.responder = answer("partial_match")
    config = openai_config(samples_per_pair=3, concurrency=8)
    run = process_run(start(published, config))
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", 12, 0)
    ns = teacher_ns(fake_openai)
    assert ns.count(3) == 1 and ns.count(1) == 12  # one refused probe (while the others waited), then one by one
    assert_billed_exactly(run, fake_openai)  # the refused request cost nothing
    assert all(s.attempts == 1 for s in TeacherSample.objects.filter(run=run))
    config.refresh_from_db()
    assert config.n_supported is False
    page = client_for(engineer).get(reverse("teacher_list")).content.decode()
    assert "one request per sample: the endpoint refuses n &gt; 1" in page

    # a later run of the config asks one sample per request at once: no n > 1 is sent again
    fake_openai.reset()
    fake_openai.n_mode = "refuse"
    ResponseCache.objects.all().delete()
    again = process_run(start(published, config))
    assert again.samples_done == 12
    assert teacher_ns(fake_openai) == [1] * 12
    plan = run_plan(version=published, config=config, selection={"all": True})
    assert (plan.requests, plan.samples_per_request) == (12, 1)

    # pointing the config at another endpoint forgets it: that one may take n
    from labeling.services.teachers import teacher_config_save

    config.model = "another-model"
    teacher_config_save(config=config, user=engineer)
    config.refresh_from_db()
    assert config.n_supported is None
    plan = run_plan(version=published, config=config, selection={"all": True})
    assert (plan.requests, plan.samples_per_request) == (len(pairs), 3)


def test_an_endpoint_that_ignores_n_gets_the_missing_samples_asked_one_by_one(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.n_mode = "ignore"  # one choice whatever n asks
    config = openai_config(samples_per_pair=3)
    run = process_run(start(published, config))
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", 12, 0)
    assert fake_openai.answers_asked() == 3 + 2 + 3 * 3  # the probe's n = 3 gave one: its pair's other 2 singly
    assert len(fake_openai.chat_requests()) == 12  # one answer per request, none asked twice
    assert_billed_exactly(run, fake_openai)
    config.refresh_from_db()
    assert config.n_supported is False


def test_cached_samples_are_answered_per_sample_index_and_only_the_rest_is_asked(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.responder = answer("strong_match")
    first = process_run(start(published, openai_config("k2", samples_per_pair=2)))
    assert first.samples_done == 8
    fake_openai.reset()
    fake_openai.responder = answer("strong_match")
    # a config with the same model and sampling but K = 4: samples 0 and 1 are in the cache, 2 and 3 are not
    more = process_run(start(published, openai_config("k4", samples_per_pair=4)))
    assert (more.samples_done, more.samples_cached) == (16, 8)
    assert teacher_ns(fake_openai) == [2] * len(pairs)  # one request per pair for its two missing samples
    cached = TeacherSample.objects.filter(run=more, cached=True)
    assert sorted(set(cached.values_list("sample_index", flat=True))) == [0, 1]
    assert sorted(set(TeacherSample.objects.filter(run=more, cached=False).values_list("sample_index", flat=True))) == [
        2, 3,
    ]  # fmt: skip
    assert_billed_exactly(more, fake_openai)  # cached samples cost nothing
    # every sample index has its own cache entry: a rerun of K = 4 asks nothing
    fake_openai.reset()
    fake_openai.responder = answer("strong_match")
    rerun = process_run(start(published, openai_config("k4-again", samples_per_pair=4)))
    assert (rerun.samples_cached, rerun.cost, fake_openai.chat_requests()) == (16, 0, [])


def test_one_choice_violating_the_schema_is_asked_again_alone_and_pays_both_requests(
    pairs, published, openai_config, fake_openai, process_run
):
    def second_choice_once_bad(request, call_number):
        label = "not_a_label" if call_number == 1 else "no_match"
        return {"label": label, "rationale": "No overlap.", "cited_rules": ["R1"]}

    fake_openai.responder = second_choice_once_bad
    run = process_run(start(published, openai_config(samples_per_pair=3)))
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", 12, 0)
    assert sorted(teacher_ns(fake_openai)) == [1] * len(pairs) + [3] * len(pairs)
    retried = TeacherSample.objects.filter(run=run, attempts=2)
    assert set(retried.values_list("sample_index", flat=True)) == {1}
    assert retried.count() == len(pairs)
    assert_billed_exactly(run, fake_openai)  # the retry's prompt is billed on the sample it re-asked
    assert all(s.input_tokens > 0 for s in retried)


def test_the_plan_counts_one_request_per_pair_and_its_prompt_once(pairs, published, openai_config, fake_openai):
    config = openai_config(samples_per_pair=5)
    plan = run_plan(version=published, config=config, selection={"all": True})
    assert (plan.requests, plan.samples_per_request) == (len(pairs), 5)
    assert plan.estimated_input_tokens == len(pairs) * plan.input_tokens_per_request
    assert plan.estimated_output_tokens == 5 * len(pairs) * plan.output_tokens_per_request
    batch = run_plan(version=published, config=config, selection={"all": True}, mode="batch")
    assert (batch.requests, batch.samples_per_request) == (len(pairs), 5)  # batch lines too: one per pair
    TeacherConfig.objects.filter(pk=config.pk).update(n_supported=False)
    config.refresh_from_db()
    refused = run_plan(version=published, config=config, selection={"all": True})
    assert refused.estimated_input_tokens == 5 * plan.estimated_input_tokens


def test_shares_of_a_responses_tokens_add_up_to_what_it_reported():
    from labeling.teacher.base import LabelSpace, TeacherAnswer
    from labeling.teacher.parsing import read_completion_choices, spread

    assert spread(10, [1, 1, 1]) == [4, 3, 3] and spread(7, [0, 0]) == [4, 3] and spread(0, [5, 1]) == [0, 0]
    assert sum(spread(1001, [17, 3, 29, 0, 11])) == 1001
    space = LabelSpace(labels=("yes", "no"), rule_ids=("R1",))
    content = '{"label": "yes", "rationale": "Fits.", "cited_rules": ["R1"]}'
    body = {
        "choices": [{"index": i, "message": {"content": content}} for i in range(3)],
        "usage": {"prompt_tokens": 500, "completion_tokens": 61, "prompt_tokens_details": {"cached_tokens": 400}},
    }
    answers = [TeacherAnswer(key=(1, i)) for i in range(4)]  # one more than the endpoint returned
    assert read_completion_choices(answers, body, space, logprobs=False) == [True, True, True, False]
    assert [a.input_tokens for a in answers] == [500, 0, 0, 0]
    assert [a.cached_input_tokens for a in answers] == [400, 0, 0, 0]
    assert sum(a.output_tokens for a in answers) == 61 and answers[3].error_kind == "missing_choice"
