"""The interface every teacher provider implements, and the values that cross it."""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol


@dataclass(frozen=True)
class LabelSpace:
    """What a valid answer may contain, from the policy version the run labels under."""

    labels: tuple[str, ...]
    rule_ids: tuple[str, ...]


@dataclass(frozen=True)
class TeacherRequest:
    """One request to the teacher. It asks for one answer per entry of ``choices`` (the answers' keys; empty:
    just ``key``): an endpoint that supports ``n`` gets them in one request (``n = len(choices)``), the prompt
    billed once; the others get one request per choice."""

    key: object  # the caller's handle, e.g. (pair_id, sample_index): the first choice's
    messages: list[dict]
    sample_index: int
    facts: dict = field(default_factory=dict)  # member/job fields (for the heuristic provider)
    choices: tuple = ()  # the keys of the answers asked for, one per choice; () means (key,)

    @property
    def answer_keys(self) -> tuple:
        return self.choices or (self.key,)

    def asking(self, keys) -> "TeacherRequest":
        """The same request asking only for the answers ``keys`` (in that order)."""
        keys = tuple(keys)
        first = keys[0]
        index = first[1] if isinstance(first, tuple) and len(first) == 2 else self.sample_index
        return replace(self, key=first, sample_index=index, choices=keys if len(keys) > 1 else ())


@dataclass
class TeacherAnswer:
    key: object
    label: str = ""
    rationale: str = ""
    cited_rules: list[str] = field(default_factory=list)
    label_probs: dict[str, float] | None = None
    raw: str = ""
    input_tokens: int = 0
    cached_input_tokens: int = 0  # of input_tokens, those the provider read from its prompt cache
    output_tokens: int = 0
    latency_ms: int = 0
    attempts: int = 1
    cached: bool = False
    error_kind: str = ""  # "" when the answer is valid
    error: str = ""
    judge: dict | None = None  # a judged run: the judge's verdict on this answer (``labeling.pipeline.judge``)

    @property
    def ok(self) -> bool:
        return not self.error_kind


class Provider(Protocol):
    """Answers requests, running up to ``concurrency`` of them at once.

    ``should_stop`` is polled before each request starts: when it returns True no new request starts (cancelling
    a run). ``answer_stream`` yields answers as they complete.
    """

    def answer_stream(
        self, requests: Iterable[TeacherRequest], *, should_stop: Callable[[], bool] = lambda: False
    ) -> Iterator[TeacherAnswer]: ...
