"""What every step of a run needs, worked out once per run: the label space frozen on it, the request
parameters, K, the system prompt, and the cache keys of its requests."""

import hashlib
import json
from dataclasses import dataclass

from policyhub.models import PolicyVersion

from ..models import LabelingRun
from ..teacher import LabelSpace, request_parameters


def label_space(version: PolicyVersion) -> LabelSpace:
    return LabelSpace(labels=tuple(version.label_keys), rule_ids=tuple(version.rule_ids))


def run_label_space(run: LabelingRun) -> LabelSpace:
    """The labels and rules frozen on the run (a draft preview's draft may change while it runs)."""
    content = run.version_content
    if content.get("labels"):
        return LabelSpace(
            labels=tuple(label["key"] for label in content["labels"]),
            rule_ids=tuple(rule["id"] for rule in content.get("rules", [])),
        )
    return label_space(run.policy_version)


def cache_key(params: dict, messages: list[dict], sample_index: int) -> str:
    """sha256 of (parameters, messages, sample index): the same request asked again is answered by the cache."""
    payload = json.dumps({"params": params, "messages": messages, "sample": sample_index}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CacheKeys:
    """:func:`cache_key` for the many requests of a run, which share the system prompt and the parameters: the
    JSON before the user message (the whole system prompt) is hashed once and the hash state copied per request,
    so a key costs the user message only. Same keys as :func:`cache_key` (sorted keys, default separators)."""

    def __init__(self, params: dict, system_prompt: str):
        head = '{"messages": [{"content": ' + json.dumps(system_prompt) + ', "role": "system"}, {"content": '
        self._system_prompt = system_prompt
        self._tail = ', "role": "user"}], "params": ' + json.dumps(params, sort_keys=True) + ', "sample": '
        self._head = hashlib.sha256(head.encode("utf-8"))
        self._params = params

    def key(self, messages: list[dict], sample_index: int) -> str:
        system, user = messages
        if (
            system != {"role": "system", "content": self._system_prompt}
            or set(user) != {"role", "content"}
            or (user["role"] != "user")
        ):
            return cache_key(self._params, messages, sample_index)
        state = self._head.copy()
        state.update(f"{json.dumps(user['content'])}{self._tail}{int(sample_index)}}}".encode())
        return state.hexdigest()


@dataclass(frozen=True)
class RunContext:
    run: LabelingRun
    space: LabelSpace
    params: dict  # everything besides the messages that determines an answer (the model among them)
    k: int  # samples per pair
    keys: CacheKeys

    @classmethod
    def of(cls, run: LabelingRun) -> "RunContext":
        space = run_label_space(run)
        params = request_parameters(run.config_snapshot, space)
        k = int(run.config_snapshot["samples_per_pair"])
        return cls(run=run, space=space, params=params, k=k, keys=CacheKeys(params, run.system_prompt))

    @property
    def system_prompt(self) -> str:
        return self.run.system_prompt
