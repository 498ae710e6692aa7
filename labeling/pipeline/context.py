"""What every step of a run needs, worked out once per run: the label space frozen on it, the request
parameters, K, the system prompt, the cache keys of its requests, and where the facts the teacher sees come from.

Facts: a run's candidates name pairs, and the teacher sees the pair's member and job (``pair_facts``), except in
a red-team run's part for one category, where it sees that category's variant of the pair (``RedTeamVariant``
rows, which never touch the member, job or pair tables). That is the only difference: requests, cache, trust
checks, the judge and routing all read the facts from here."""

import hashlib
import json
from dataclasses import dataclass

from django.db.models import QuerySet

from policyhub.models import PolicyVersion

from ..models import LabelingRun, RedTeamVariant
from ..teacher import LabelSpace, request_parameters
from ..teacher.messages import JOB_FIELDS, MEMBER_FIELDS, pair_facts


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
        return self.keys(messages, [sample_index])[0]

    def keys(self, messages: list[dict], sample_indices) -> list[str]:
        """The keys of the samples ``sample_indices`` of one request: the messages are encoded and hashed once,
        the hash state copied per sample (a pair's K samples share their prompt)."""
        system, user = messages
        if (
            system != {"role": "system", "content": self._system_prompt}
            or set(user) != {"role", "content"}
            or (user["role"] != "user")
        ):
            return [cache_key(self._params, messages, index) for index in sample_indices]
        state = self._head.copy()
        state.update(f"{json.dumps(user['content'])}{self._tail}".encode())
        keys = []
        for index in sample_indices:
            sample = state.copy()
            sample.update(f"{int(index)}}}".encode())
            keys.append(sample.hexdigest())
        return keys


def variant_facts(red_team_set_id: int, category: str, pair_ids) -> dict[int, tuple[dict, dict]]:
    """{pair id: (member facts, job facts)} of the set's ``category`` variants of these pairs, keys in the order
    the teacher sees a clean pair's (JSON columns do not keep the order)."""
    rows = RedTeamVariant.objects.filter(red_team_set_id=red_team_set_id, category=category, pair_id__in=pair_ids)
    return {
        pair_id: ({k: member[k] for k in MEMBER_FIELDS if k in member}, {k: job[k] for k in JOB_FIELDS if k in job})
        for pair_id, member, job in rows.values_list("pair_id", "member", "job")
    }


@dataclass(frozen=True)
class RunContext:
    run: LabelingRun
    space: LabelSpace
    params: dict  # everything besides the messages that determines an answer (the model among them)
    k: int  # samples per pair
    keys: CacheKeys
    variants: tuple[int, str] | None = None  # a red-team part: (red-team set id, category) whose variants it labels

    @classmethod
    def of(cls, run: LabelingRun) -> "RunContext":
        space = run_label_space(run)
        params = request_parameters(run.config_snapshot, space)
        k = int(run.config_snapshot["samples_per_pair"])
        variants = None
        if run.red_team_category:
            set_id = run.red_team_run.red_team_set_id if run.red_team_run_id else None
            variants = (set_id, run.red_team_category)
        return cls(run=run, space=space, params=params, k=k, keys=CacheKeys(params, run.system_prompt),
                   variants=variants)  # fmt: skip

    def facts(self, rows: QuerySet) -> dict[int, tuple[dict, dict]]:
        """What the teacher sees for the pairs of ``rows`` (candidates of this run): each pair's member and job,
        or in a red-team part the variant of the pair."""
        if self.variants is None:
            return pair_facts(rows)
        return variant_facts(*self.variants, rows.values("pair_id"))

    @property
    def system_prompt(self) -> str:
        return self.run.system_prompt
