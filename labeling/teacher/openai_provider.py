"""The OpenAI provider: the official SDK against any OpenAI-compatible endpoint (``base_url``).

Requests run concurrently (``AsyncOpenAI`` under a semaphore of ``concurrency``). Faults:

* 429, 5xx, timeouts and connection errors are retried up to ``max_attempts`` with exponential backoff and
  jitter, waiting at least what ``Retry-After`` (or ``retry-after-ms``) asks;
* an answer that violates the schema (bad JSON, label outside the set, unknown rule ID) is retried once, then
  recorded as failed with its raw text and the reason;
* a request asking for K answers (``TeacherRequest.choices``) sends ``n = K`` once: the prompt is billed once.
  An endpoint that refuses ``n > 1`` (a 400/422 where the same request with ``n = 1`` works) or ignores it (fewer
  choices than asked for) gets one request per answer instead. The first such request of a provider finds out
  (the others wait for it) and ``n_learned`` says what it found, so the caller remembers it for the config;
* any other 4xx (bad request, auth) fails at once with the provider's message.
"""

import asyncio
import itertools
import json
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from email.utils import parsedate_to_datetime

import aiohttp
import httpx2
import openai

from .base import LabelSpace, TeacherAnswer, TeacherRequest
from .endpoints import EndpointRefused, TeacherConfigError, endpoint
from .messages import answer_schema
from .parsing import read_completion, read_completion_choices
from .transport import async_http_client, sync_http_client

__all__ = ["OpenAIProvider", "TeacherConfigError", "request_parameters", "sync_client"]

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0
HANDOFF_ANSWERS = 200
HANDOFF_SECONDS = 1.0
FEED_REQUESTS = 64
_MORE = object()  # from the event loop to the caller's thread: read the next batch of requests
#: What an endpoint that does not take ``n > 1`` answers a request with one (vLLM and OpenAI take it; some servers
#: refuse it with 400 or, pydantic-based ones, 422). Others ignore it and return one choice: handled too.
N_REFUSED_STATUSES = (400, 422)


def is_transient(error: BaseException) -> bool:
    """An SDK error worth trying again later (connection trouble, 429, 5xx), not a refusal."""
    return isinstance(error, openai.APIConnectionError | openai.RateLimitError | openai.InternalServerError)


def retry_after_seconds(response) -> float | None:
    if response is None:
        return None
    headers = response.headers
    if value := headers.get("retry-after-ms"):
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _transport_error(error: BaseException) -> BaseException | None:
    """The aiohttp exception behind an SDK error, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, aiohttp.ClientError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _refused_or_dropped(error: openai.APITimeoutError) -> aiohttp.ClientError | None:
    """The aiohttp transport reports a refused or dropped connection as a timeout; tell the two apart."""
    cause = _transport_error(error)
    return cause if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError) else None


async def _next_batch(feed: queue.Queue) -> list | None:
    """The next batch the caller's thread put on ``feed``, waiting for it off the event loop."""
    try:
        return feed.get_nowait()
    except queue.Empty:
        return await asyncio.get_running_loop().run_in_executor(None, feed.get)


def _batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)  # noqa: S311


def request_parameters(snapshot: dict, space: LabelSpace) -> dict:
    """Everything besides messages that determines an answer: the model and the sampling parameters."""
    params: dict = {
        "model": snapshot["model"],
        "temperature": snapshot.get("temperature", 0.7),
        "response_format": answer_schema(space),
    }
    if snapshot.get("logprobs"):
        params.update(logprobs=True, top_logprobs=int(snapshot.get("top_logprobs", 5)))
    return params


def sync_client(snapshot: dict, *, max_retries: int = 2) -> openai.OpenAI:
    """A blocking client for the files and batches endpoints (uploads get at least 60 s), after the worker's
    endpoint check."""
    checked = endpoint(snapshot)
    timeout = max(60.0, float(snapshot.get("request_timeout", 60.0)))
    return openai.OpenAI(
        api_key=checked.api_key, base_url=checked.base_url, max_retries=max_retries, timeout=timeout,
        http_client=sync_http_client(timeout=timeout),
    )  # fmt: skip


class TeacherFormat:
    """How a teacher's answers are asked for (the request parameters, the label schema) and read. The judge
    (``labeling.pipeline.judge``) asks through the same provider with its own format."""

    def __init__(self, snapshot: dict, space: LabelSpace):
        self.space, self.logprobs = space, bool(snapshot.get("logprobs"))
        self.parameters = request_parameters(snapshot, space)

    def new(self, key) -> TeacherAnswer:
        return TeacherAnswer(key=key, attempts=0)

    def read(self, answer: TeacherAnswer, body) -> bool:
        return read_completion(answer, body, self.space, logprobs=self.logprobs)

    def read_choices(self, answers: list[TeacherAnswer], body) -> list[bool]:
        return read_completion_choices(answers, body, self.space, logprobs=self.logprobs)


class OpenAIProvider:
    def __init__(self, *, snapshot: dict, space: LabelSpace, answer_format=None, n_supported: bool | None = None):
        """``n_supported``: whether the endpoint answers ``n > 1`` in one request (None: not known yet; the
        first such request finds out, and ``n_learned`` then says what it found for the caller to remember)."""
        checked = endpoint(snapshot)  # refused here: the run fails with the reason before anything is sent
        self.api_key, self.base_url = checked.api_key, checked.base_url
        self.model = snapshot["model"]
        self.space = space
        self.concurrency = max(1, int(snapshot.get("concurrency", 8)))
        self.timeout = float(snapshot.get("request_timeout", 60.0))
        self.max_attempts = max(1, int(snapshot.get("max_attempts", 5)))
        self.format = answer_format or TeacherFormat(snapshot, space)
        self.params = {k: v for k, v in self.format.parameters.items() if k != "model"}
        self.n_supported: bool | None = n_supported
        self.n_learned: bool | None = None

    def answers_after(self, per_request: int) -> int:
        """How many answers may still be on their way once all others were handed over: a round in flight plus
        a hand-off batch. A caller storing answers as they come stores what it has then, so little is left to
        store after the last one."""
        return self.concurrency * per_request + HANDOFF_ANSWERS

    def answer_stream(
        self, requests: Iterable[TeacherRequest], *, should_stop: Callable[[], bool] = lambda: False
    ) -> Iterator[TeacherAnswer]:
        """Yield answers as they complete. The requests run on an event loop in a helper thread, so the caller's
        thread (and its database connection) is free to store answers while later ones are still in flight.

        ``requests`` is read in the caller's thread a batch at a time (FEED_REQUESTS, at most the concurrency),
        each when the loop asks for it (``_MORE``) after starting the previous one: a generator that prepares
        requests slice by slice (database reads, cache lookups) does that work while the first requests are in
        flight, and the first batch is sent before the caller reads the next (the two threads share one GIL)."""
        finished = object()
        feed: queue.Queue = queue.Queue()  # lists of requests, or None: no more
        results: queue.Queue = queue.Queue()  # lists of answers, _MORE, an error, then ``finished``
        abandoned = threading.Event()

        def stop() -> bool:
            return abandoned.is_set() or should_stop()

        def run_loop() -> None:
            try:
                asyncio.run(self._run_requests(feed, stop, results.put))
            except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                results.put(error)
            finally:
                results.put(finished)

        batches = _batched(requests, min(FEED_REQUESTS, self.concurrency))
        thread = threading.Thread(target=run_loop, name="teacher-requests", daemon=True)
        thread.start()
        try:
            while (item := results.get()) is not finished:
                if item is _MORE:
                    feed.put(next(batches, None))  # a failure to read ends the stream with that error
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield from item
        finally:
            abandoned.set()  # the caller stopped early, or reading failed: start no new request
            feed.put(None)  # the loop may be waiting for a batch
            thread.join()

    async def _run_requests(self, feed: queue.Queue, should_stop, deliver) -> None:
        """Answer the requests arriving on ``feed``, asking for each next batch (``_MORE``) once the last one has
        started, and hand the answers to ``deliver`` in batches (every HANDOFF_ANSWERS answers or HANDOFF_SECONDS):
        waking the consumer thread per answer would cost more CPU than the answers do."""
        semaphore = asyncio.Semaphore(self.concurrency)
        batch: list[TeacherAnswer] = []
        last = time.monotonic()

        # aiohttp as the SDK's transport (``openai[aiohttp]``, the SDK's documented option for high concurrency):
        # its C HTTP parser and connector cost a third less CPU per request than httpcore's pure-Python pool,
        # whose per-request scan of every pooled connection grows with the concurrency.
        async with openai.AsyncOpenAI(
            api_key=self.api_key,
            base_url=self.base_url,
            max_retries=0,
            timeout=self.timeout,
            http_client=async_http_client(timeout=self.timeout, limit=self.concurrency),
        ) as client:
            probe, probed = asyncio.Lock(), False

            async def one(request: TeacherRequest) -> None:
                nonlocal batch, last, probed
                keys = request.answer_keys
                if len(keys) > 1 and self.n_supported is None:
                    if not probed:  # the first request with n > 1 finds out whether the endpoint takes it ...
                        probed = True
                        async with probe:
                            hand(await self._guarded(client, semaphore, request, should_stop))
                        return
                    async with probe:  # ... while the others wait for it
                        pass
                if len(keys) > 1 and self.n_supported is False:  # one request per choice, as many at once as allowed
                    await asyncio.gather(*(one(request.asking([key])) for key in keys))
                    return
                hand(await self._guarded(client, semaphore, request, should_stop))

            def hand(answers: list[TeacherAnswer] | None) -> None:
                nonlocal batch, last
                if answers:
                    batch.extend(answers)
                if batch and (len(batch) >= HANDOFF_ANSWERS or time.monotonic() - last >= HANDOFF_SECONDS):
                    deliver(batch)
                    batch, last = [], time.monotonic()

            tasks = []
            while not should_stop():
                deliver(_MORE)
                if (requests := await _next_batch(feed)) is None:
                    break
                for request in requests:  # each starts before the next is created: the first round goes out
                    tasks.append(asyncio.create_task(one(request)))  # one by one, not after all are prepared
                    await asyncio.sleep(0)
            await asyncio.gather(*tasks)
            if batch:  # before closing the client: the caller stores them meanwhile
                deliver(batch)

    async def _guarded(self, client, semaphore, request, should_stop) -> list[TeacherAnswer] | None:
        async with semaphore:
            if should_stop():
                return None  # not attempted: the run is being cancelled
            return await self._answer(client, request)

    async def _answer(self, client, request: TeacherRequest) -> list[TeacherAnswer]:
        """The answers a request asks for (one per choice): in one request with ``n`` = the choices still to
        answer, or one request per choice on an endpoint that refuses ``n > 1``. Valid choices are kept; a choice
        that violates the schema is asked again once (with the other violators of its round), then fails."""
        answers = {key: self.format.new(key) for key in request.answer_keys}
        started = time.perf_counter()
        todo = list(answers)  # keys still to answer, in choice order
        retried: set = set()  # keys whose schema violation was asked again already
        doubt = False  # a 4xx at n > 1 on an endpoint not known to take n: n = 1 tells a refusal from a bad request
        while todo:
            asked = todo if self.n_supported is not False and not doubt else todo[:1]
            for key in asked:
                answers[key].attempts += 1
            attempts = max(answers[key].attempts for key in asked)
            wait, error_kind, error = None, "", ""
            try:
                # Through the SDK's client (auth, base URL, typed errors), but without its per-request typed-params
                # transform and response models: together they cost over half the CPU of a request, which is
                # what bounds throughput at high concurrency. The body is the documented chat completions one.
                response = await client.post(
                    "/chat/completions",
                    body={"model": self.model, "messages": request.messages, "n": len(asked), **self.params},
                    cast_to=httpx2.Response,
                )
                body = json.loads(response.content)
            except openai.RateLimitError as exc:
                wait, error_kind, error = retry_after_seconds(exc.response), "rate_limited", str(exc)
            except openai.APITimeoutError as exc:
                if cause := _refused_or_dropped(exc):
                    error_kind, error = "connection_error", f"Connection error. ({cause})"
                else:
                    error_kind, error = "timeout", f"no answer within {self.timeout:g} s ({exc})"
            except EndpointRefused as exc:  # the host now resolves to a refused address (transport.CheckedResolver)
                return self._failed_all(answers, todo, started, "endpoint_refused", str(exc))
            except openai.APIConnectionError as exc:
                error_kind, error = "connection_error", str(exc)
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    if len(asked) > 1 and self.n_supported is not True and exc.status_code in N_REFUSED_STATUSES:
                        doubt = True  # ask the first choice alone: if that works, the endpoint refuses n > 1
                        for key in asked:
                            answers[key].attempts -= 1  # a refused request answered (and billed) nothing
                        continue
                    return self._failed_all(answers, todo, started, f"http_{exc.status_code}", str(exc))
                wait, error_kind, error = retry_after_seconds(exc.response), "server_error", str(exc)
            except (ValueError, KeyError) as exc:  # a 200 whose body is not a chat completion
                error_kind, error = "server_error", f"unreadable response: {exc}"
            else:
                todo = self._read(answers, asked, body, retried, started, doubt) + todo[len(asked) :]
                continue
            if attempts >= self.max_attempts:
                error = f"gave up after {attempts} attempts: {error}"
                return self._failed_all(answers, todo, started, error_kind, error)
            await asyncio.sleep(min(RETRY_AFTER_CAP, max(wait or 0.0, backoff(attempts))))
        return list(answers.values())

    def _read(self, answers: dict, asked: list, body, retried: set, started: float, doubt: bool) -> list:
        """Read one completion into the answers ``asked``; returns the keys to ask again (a schema violation
        asked for the first time, a choice the endpoint did not return). Learns whether the endpoint takes n."""
        if len(asked) == 1:
            valid = [self.format.read(answers[asked[0]], body)]
        else:
            valid = self.format.read_choices([answers[key] for key in asked], body)
        missing = [key for key in asked if answers[key].error_kind == "missing_choice"]
        if doubt:
            self._learn(False)  # n = 1 answered where n > 1 was refused
        elif len(asked) > 1:
            self._learn(not missing)  # fewer choices than asked for: the endpoint ignores n
        again = []
        for key, ok in zip(asked, valid, strict=True):
            answer = answers[key]
            if ok:
                answer.latency_ms = int((time.perf_counter() - started) * 1000)
            elif key in missing:
                answer.error_kind, answer.error, answer.attempts = "", "", answer.attempts - 1
                again.append(key)
            elif key not in retried:
                retried.add(key)
                again.append(key)
            else:
                self._failed(answer, started, answer.error_kind, answer.error)
        return again

    def _learn(self, supported: bool) -> None:
        """Note what this endpoint does with ``n > 1``, once; the caller remembers it (``n_learned``)."""
        if self.n_supported is None:
            self.n_supported = self.n_learned = supported

    def _failed_all(self, answers: dict, keys: list, started: float, kind: str, error: str) -> list[TeacherAnswer]:
        for key in keys:
            self._failed(answers[key], started, kind, error)
        return list(answers.values())

    @staticmethod
    def _failed(answer: TeacherAnswer, started: float, kind: str, error: str) -> TeacherAnswer:
        answer.error_kind, answer.error = kind, error[:2000]
        answer.latency_ms = int((time.perf_counter() - started) * 1000)
        return answer
