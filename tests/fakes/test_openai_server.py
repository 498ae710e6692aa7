"""The fake OpenAI server, driven through the real ``openai`` client (no monkeypatching)."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI, _common_prefix_length, label_segments

LABELS = ["partial_match", "strong_match", "no_match"]
RULES = ["R1", "R2", "R3"]
LABEL_PREFIX = '{"label": "'


def response_format(labels=LABELS, rules=RULES):
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "pair_label",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "label": {"type": "string", "enum": labels},
                    "rationale": {"type": "string"},
                    "cited_rules": {"type": "array", "items": {"type": "string", "enum": rules}},
                },
                "required": ["label", "rationale", "cited_rules"],
                "additionalProperties": False,
            },
        },
    }


def messages(text="Member: Ada, Python. Job: Python developer."):
    return [{"role": "system", "content": "Label the pair."}, {"role": "user", "content": text}]


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as sdk:
        yield sdk


def ask(client, **extra):
    params = {"model": "fake-model", "messages": messages(), "response_format": response_format()}
    params.update(extra)
    return client.chat.completions.create(**params)


def label_token(choice):
    """The token holding the label's first segment: the one right after the '{"label": "' prefix."""
    tokens = choice.logprobs.content
    text = ""
    for index, token in enumerate(tokens):
        text += token.token
        if text == LABEL_PREFIX:
            return tokens[index + 1]
    raise AssertionError("no label token")


def test_structured_answer_uses_the_schema_label_enum(server, client):
    completion = ask(client)

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "fake-model"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.refusal is None
    assert list(json.loads(choice.message.content)) == ["label", "rationale", "cited_rules"]
    assert json.loads(choice.message.content) == {
        "label": "partial_match",
        "rationale": "Default fake answer.",
        "cited_rules": ["R1"],
    }
    assert choice.logprobs is None
    usage = completion.usage
    assert usage.prompt_tokens == sum(len(m["content"]) for m in messages()) // 4
    assert usage.completion_tokens == len(choice.message.content) // 4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert server.chat_requests()[0]["response_format"] == response_format()
    assert server.requests[0]["messages"] == messages()


def test_parse_helper_with_a_pydantic_model(client):
    from typing import Literal

    from pydantic import BaseModel

    class Answer(BaseModel):
        label: Literal["no_match", "strong_match"]
        rationale: str
        cited_rules: list[str]

    completion = client.chat.completions.parse(model="fake-model", messages=messages(), response_format=Answer)

    parsed = completion.choices[0].message.parsed
    assert parsed == Answer(label="no_match", rationale="Default fake answer.", cited_rules=[])


def test_n_returns_that_many_choices(client):
    completion = ask(client, n=3)

    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert all(json.loads(choice.message.content)["label"] == "partial_match" for choice in completion.choices)


def test_n_counts_the_prompt_once_and_the_completion_of_every_choice(server, client):
    one, three = ask(client), ask(client, n=3)
    assert three.usage.prompt_tokens == one.usage.prompt_tokens  # the prompt once, not three times
    characters = sum(len(choice.message.content) for choice in three.choices)
    assert three.usage.completion_tokens == int(characters / server.chars_per_token)
    assert server.billed() == {
        "prompt": 2 * one.usage.prompt_tokens,
        "cached": three.usage.prompt_tokens_details.cached_tokens,
        "completion": one.usage.completion_tokens + three.usage.completion_tokens,
    }
    assert server.answers_asked() == 4


def test_a_server_refusing_n_answers_400_and_one_ignoring_it_returns_one_choice(server, client):
    server.n_mode = "refuse"
    with pytest.raises(openai.BadRequestError) as refused:
        ask(client, n=2)
    assert refused.value.status_code == 400 and refused.value.body["param"] == "n"
    assert len(ask(client, n=1).choices) == 1  # n = 1 is still answered
    server.n_mode = "ignore"
    assert [choice.index for choice in ask(client, n=3).choices] == [0]
    server.reset()
    assert server.n_mode == "honour"


def test_logprobs_carry_the_responders_label_distribution(server, client):
    probs = {"strong_match": 0.6, "partial_match": 0.3, "no_match": 0.1}
    server.responder = lambda request, number: {
        "label": "strong_match",
        "rationale": "Python is required and present (R1).",
        "cited_rules": ["R1"],
        "probs": probs,
    }

    completion = ask(client, logprobs=True, top_logprobs=5)

    choice = completion.choices[0]
    tokens = choice.logprobs.content
    assert "".join(token.token for token in tokens) == choice.message.content
    assert all(token.bytes == list(token.token.encode()) for token in tokens)
    token = label_token(choice)
    assert token.token == "strong"
    assert math.exp(token.logprob) == pytest.approx(0.6)
    top = {entry.token: math.exp(entry.logprob) for entry in token.top_logprobs}
    assert top == pytest.approx({"strong": 0.6, "partial": 0.3, "no": 0.1})
    assert [entry.token for entry in token.top_logprobs] == ["strong", "partial", "no"]
    following = tokens[tokens.index(token) + 1]
    assert following.token == "_match"
    assert following.logprob == 0.0
    assert [entry.token for entry in following.top_logprobs] == ["_match"]


def test_logprobs_are_truncated_to_top_logprobs_and_default_probs_are_used(client):
    completion = ask(client, logprobs=True, top_logprobs=2)

    token = label_token(completion.choices[0])
    assert token.token == "partial"
    assert [(entry.token, round(math.exp(entry.logprob), 6)) for entry in token.top_logprobs] == [
        ("partial", 0.9),
        ("strong", 0.05),
    ]


def test_label_segments():
    assert label_segments("strong_match") == ["strong", "_match"]
    assert label_segments("no") == ["no"]
    assert label_segments("a_b_c") == ["a", "_b", "_c"]


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        ("429", openai.RateLimitError, 429),
        ("500", openai.InternalServerError, 500),
        ("503", openai.InternalServerError, 503),
    ],
)
def test_http_faults_reach_the_sdk_as_status_errors(server, client, kind, error, status):
    server.fail_next(kind, retry_after=7 if kind == "429" else None)

    with pytest.raises(error) as raised:
        ask(client)

    assert raised.value.status_code == status
    assert raised.value.body["message"]
    if kind == "429":
        assert raised.value.response.headers["retry-after"] == "7"
    assert json.loads(ask(client).choices[0].message.content)["label"] == "partial_match"  # fault consumed
    assert len(server.requests) == 2


def test_429_without_retry_after_has_no_header(server, client):
    server.fail_next("429")

    with pytest.raises(openai.RateLimitError) as raised:
        ask(client)

    assert "retry-after" not in raised.value.response.headers


def test_sdk_retries_honour_the_faults(server):
    server.fail_next("429", retry_after=0.01)
    server.fail_next("503")
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=2) as retrying:
        completion = ask(retrying)

    assert json.loads(completion.choices[0].message.content)["label"] == "partial_match"
    assert len(server.requests) == 3


def test_timeout_fault_makes_the_client_time_out(server, client):
    server.fail_next("timeout")

    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(client, timeout=0.5)

    assert time.monotonic() - started < 5
    assert ask(client, timeout=5).choices[0].message.content  # the server still answers others


def test_content_faults(server, client):
    server.fail_next("malformed_json")
    server.fail_next("bad_label")
    server.fail_next("bad_rule")
    server.fail_next("empty_rationale")

    malformed = ask(client).choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed)
    assert malformed.startswith('{"label": "partial_match", "rationale": ')
    assert json.loads(ask(client).choices[0].message.content)["label"] == "definitely_not_a_label"
    assert json.loads(ask(client).choices[0].message.content)["cited_rules"] == ["R999"]
    assert json.loads(ask(client).choices[0].message.content)["rationale"] == ""
    assert json.loads(ask(client).choices[0].message.content)["rationale"] == "Default fake answer."


def test_fail_next_count_and_unknown_kind(server, client):
    server.fail_next("500", count=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            ask(client)
    assert ask(client).choices
    with pytest.raises(ValueError):
        server.fail_next("teapot")


def test_responder_call_number_counts_identical_messages(server, client):
    seen = []

    def responder(request, number):
        seen.append((request["messages"][-1]["content"], number))
        return {"label": LABELS[number % 3], "rationale": f"call {number}", "cited_rules": []}

    server.responder = responder
    first = ask(client)
    second = ask(client)
    other = ask(client, messages=messages("Member: Bo. Job: Chef."))
    triple = ask(client, n=3)

    assert json.loads(first.choices[0].message.content)["label"] == "partial_match"
    assert json.loads(second.choices[0].message.content)["label"] == "strong_match"
    assert json.loads(other.choices[0].message.content)["rationale"] == "call 0"
    assert [json.loads(c.message.content)["rationale"] for c in triple.choices] == ["call 2", "call 3", "call 4"]
    assert [number for _, number in seen] == [0, 1, 0, 2, 3, 4]

    server.reset()
    assert server.requests == []
    assert server.responder is None
    assert json.loads(ask(client).choices[0].message.content)["rationale"] == "Default fake answer."


def test_latency_is_applied(server, client):
    server.latency = 0.3

    started = time.monotonic()
    ask(client)

    assert time.monotonic() - started >= 0.3


def test_stats_say_when_requests_were_served_and_for_how_long(server, client):
    """What bench/teacher_cost.py splits a run's wall time by: before the first request, serving, after."""
    assert server.stats()["served"] is None
    server.latency = 0.1
    before = time.time()
    ask(client)
    ask(client)
    served = server.stats()["served"]

    assert before <= served["first"] < served["last"] <= time.time()
    assert 0.2 <= served["seconds"] <= served["last"] - served["first"]


def test_64_concurrent_requests_are_served_concurrently(server, client):
    server.latency = 0.2

    def one(i):
        return ask(client, messages=messages(f"pair {i}")).choices[0].message.content

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(one, range(64)))
    elapsed = time.monotonic() - started

    assert len(answers) == 64
    assert len(server.requests) == 64
    assert elapsed < 3, f"64 requests took {elapsed:.2f} s"


def test_async_client_works_too(server):
    import asyncio

    async def run():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0) as sdk:
            results = await asyncio.gather(*(ask_async(sdk, i) for i in range(8)))
        return results

    async def ask_async(sdk, i):
        completion = await sdk.chat.completions.create(
            model="fake-model", messages=messages(f"pair {i}"), response_format=response_format()
        )
        return completion.choices[0].message.content

    server.latency = 0.1
    assert len(asyncio.run(run())) == 8


def test_files_round_trip(client):
    data = b'{"a": 1}\n{"b": "\xc3\xa9"}\n'

    created = client.files.create(file=("input.jsonl", data, "application/jsonl"), purpose="batch")

    assert created.id.startswith("file-")
    assert created.bytes == len(data)
    assert created.filename == "input.jsonl"
    assert created.purpose == "batch"
    assert created.status == "processed"
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).content == data
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-missing")


def batch_lines(count):
    return [
        {
            "custom_id": f"pair-{i}-sample-0",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "fake-model", "messages": messages(f"pair {i}"), "response_format": response_format()},
        }
        for i in range(count)
    ]


def upload_lines(client, lines):
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("batch.jsonl", data), purpose="batch")


def test_batch_create_poll_complete_and_output(server, client):
    lines = batch_lines(5)
    uploaded = upload_lines(client, lines)

    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "7"}
    )
    assert batch.id.startswith("batch_")
    assert batch.status == "validating"
    assert batch.output_file_id is None
    assert batch.metadata == {"run": "7"}
    statuses = [client.batches.retrieve(batch.id).status for _ in range(3)]
    assert statuses == ["in_progress", "completed", "completed"]

    done = client.batches.retrieve(batch.id)
    assert done.request_counts.total == 5
    assert done.request_counts.completed == 5
    assert done.request_counts.failed == 0
    assert done.error_file_id is None
    output = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    assert sorted(item["custom_id"] for item in output) == sorted(line["custom_id"] for line in lines)
    for item in output:
        assert item["id"].startswith("batch_req_")
        assert item["error"] is None
        assert item["response"]["status_code"] == 200
        body = item["response"]["body"]
        assert body["object"] == "chat.completion"
        assert json.loads(body["choices"][0]["message"]["content"])["label"] == "partial_match"
    assert server.requests == []  # batch lines are not HTTP chat requests


def test_batch_faults_only_when_enabled(server, client):
    server.batch_polls_to_complete = 1
    server.fail_next("500")
    uploaded = upload_lines(client, batch_lines(2))

    plain = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.retrieve(plain.id).request_counts.failed == 0
    assert server.pending_faults() == ["500"]

    server.batch_faults = True
    faulty = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    done = client.batches.retrieve(faulty.id)
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 1)
    errors = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert errors[0]["custom_id"] == "pair-0-sample-0"
    assert errors[0]["response"]["status_code"] == 500


def test_batch_list_pages_newest_first_through_the_sdk(client):
    uploaded = upload_lines(client, batch_lines(1))
    created = [
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"n": str(i)}
        ).id
        for i in range(5)
    ]
    first_page = client.batches.list(limit=2)
    assert [b.id for b in first_page.data] == created[::-1][:2] and first_page.has_more
    assert [b.id for b in client.batches.list(limit=2)] == created[::-1]  # the SDK follows ``after``
    assert [b.metadata["n"] for b in client.batches.list(limit=100)] == ["4", "3", "2", "1", "0"]
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=0)


def test_batch_cancel(client):
    uploaded = upload_lines(client, batch_lines(1))
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")

    cancelled = client.batches.cancel(batch.id)

    assert cancelled.status == "cancelled"
    assert client.batches.retrieve(batch.id).status == "cancelled"


def raw_request(server, path, body=None, method="POST"):
    request = urllib.request.Request(
        server.base_url.removesuffix("/v1") + path,
        data=body,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_unknown_path_is_404_and_bad_json_is_400(server, client):
    status, body = raw_request(server, "/v1/nope", b"{}")
    assert status == 404
    assert body["error"]["message"]
    status, body = raw_request(server, "/v1/nope", method="GET")
    assert status == 404
    status, body = raw_request(server, "/v1/chat/completions", b"{not json")
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    server.fail_next("500")
    status, body = raw_request(server, "/v1/chat/completions", json.dumps({"model": "m"}).encode())
    assert status == 400
    assert body["error"]["param"] == "messages"
    assert server.pending_faults() == ["500"]  # an invalid request does not use up a fault
    with pytest.raises(openai.NotFoundError):
        client.models.list()


def test_stop_and_restart_keeps_the_port():
    fake = FakeOpenAI().start()
    url = fake.base_url
    fake.stop()
    with openai.OpenAI(base_url=url, api_key="test", max_retries=0, timeout=2) as sdk:
        with pytest.raises(openai.APIConnectionError):
            ask(sdk)
        fake.start()
        try:
            assert fake.base_url == url
            assert ask(sdk).choices
        finally:
            fake.stop()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_until_interrupted(signum):
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--latency", "0.01"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stdout.readline()
        base_url = line.split(" on ", 1)[1].split(" ", 1)[0]
        with openai.OpenAI(base_url=base_url, api_key="test", max_retries=0) as sdk:
            assert ask(sdk).choices
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_stops_on_sigint_when_started_in_the_background():
    """A background job (``cmd &``, a CI step) starts its children with SIGINT ignored; the server still stops."""
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509 - what a shell `&` does
    )
    try:
        assert " on http://" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("a", "b"), [("", ""), ("abc", ""), ("abc", "abc"), ("abc", "abd"), ("abc", "abcdef"), ("xbc", "abc"),
                 ("policy " * 500 + "member 1", "policy " * 500 + "member 2")],
)  # fmt: skip
def test_the_cached_prefix_is_the_common_prefix(a, b):
    assert _common_prefix_length(a, b) == _common_prefix_length(b, a) == len(os.path.commonprefix([a, b]))


def test_usage_reports_the_prompt_prefix_seen_before_as_cached_tokens(server, client):
    policy = "Label the pair by the policy. " * 20  # 600 characters: 150 tokens at 4 characters per token
    first = ask(client, messages=[{"role": "system", "content": policy}, {"role": "user", "content": "pair one"}])
    again = ask(client, messages=[{"role": "system", "content": policy}, {"role": "user", "content": "pair two"}])
    other = ask(client, messages=[{"role": "system", "content": "Another policy."}, {"role": "user", "content": "x"}])
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    # the policy and "pair " are shared: 605 characters
    assert again.usage.prompt_tokens_details.cached_tokens == int(605 / server.chars_per_token)
    assert again.usage.prompt_tokens == int((600 + 8) / server.chars_per_token)
    assert other.usage.prompt_tokens_details.cached_tokens == 0

    server.prompt_cache = False
    assert ask(client, messages=again_messages(policy)).usage.prompt_tokens_details.cached_tokens == 0


def again_messages(policy):
    return [{"role": "system", "content": policy}, {"role": "user", "content": "pair two"}]
