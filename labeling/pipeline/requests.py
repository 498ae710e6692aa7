"""The requests a set of a run's candidates still needs: one per (pair, sample index) without a stored sample,
with its messages and cache key; the response cache answers what it can, so nothing is paid for twice.

Online chunks (``chunk``) and batch submissions and ingestion (``services.batches``) all build their work here.
"""

from dataclasses import dataclass, field

from django.db.models import QuerySet

from ..models import Candidate, ResponseCache, RunChunk, TeacherSample
from ..teacher import TeacherAnswer, TeacherRequest
from ..teacher.messages import build_messages
from .context import RunContext

Key = tuple[int, int]  # (pair id, sample index): how a run names one request, sample and answer


@dataclass
class Work:
    """What some candidates of a run still need: ``requests`` for the teacher, ``cached`` answers already known."""

    candidates: list[Candidate]
    facts: dict[int, tuple[dict, dict]]  # pair id -> (member facts, job facts)
    requests: list[TeacherRequest]
    keys: dict[Key, str]  # request key -> cache key
    cached: dict[Key, TeacherAnswer] = field(default_factory=dict)


def chunk_candidates(chunk: RunChunk) -> QuerySet[Candidate]:
    return Candidate.objects.filter(
        run_id=chunk.run_id, id__gte=chunk.first_candidate_id, id__lte=chunk.last_candidate_id
    )


def missing_work(
    ctx: RunContext, rows: QuerySet[Candidate], candidates: list[Candidate], *, skip=frozenset(), only=None
) -> Work:
    """The requests of ``candidates`` (the rows of the queryset ``rows``) whose samples are not stored yet, in
    candidate then sample order; ``skip`` leaves out, and ``only`` keeps only, the given keys."""
    facts = ctx.facts(rows)
    have = set(
        TeacherSample.objects.filter(run=ctx.run, pair_id__in=rows.values("pair_id")).values_list(
            "pair_id", "sample_index"
        )
    )
    requests, keys = [], {}
    for candidate in candidates:
        member, job = facts[candidate.pair_id]
        messages = build_messages(ctx.system_prompt, member, job)
        for index in range(ctx.k):
            key = (candidate.pair_id, index)
            if key in have or key in skip or (only is not None and key not in only):
                continue
            requests.append(
                TeacherRequest(key=key, messages=messages, sample_index=index, facts={"member": member, "job": job})
            )
            keys[key] = ctx.keys.key(messages, index)
    return Work(candidates=candidates, facts=facts, requests=requests, keys=keys)


def answer_from_cache(work: Work) -> Work:
    """Move the requests the response cache answers out of ``work.requests`` into ``work.cached``."""
    work.cached = cached_answers(work.keys, work.requests)
    work.requests = [request for request in work.requests if request.key not in work.cached]
    return work


def cached_answers(keys: dict[Key, str], requests: list[TeacherRequest]) -> dict[Key, TeacherAnswer]:
    found: dict[Key, TeacherAnswer] = {}
    if not keys:
        return found
    by_key = {row.key: row for row in ResponseCache.objects.filter(key__in=set(keys.values()))}
    for request in requests:
        row = by_key.get(keys[request.key])
        if row:
            found[request.key] = TeacherAnswer(
                key=request.key, label=row.answer["label"], rationale=row.answer["rationale"],
                cited_rules=row.answer["cited_rules"], label_probs=row.answer.get("label_probs"),
                raw=row.answer.get("raw", ""), input_tokens=row.input_tokens, output_tokens=row.output_tokens,
                attempts=0, cached=True,
            )  # fmt: skip
    return found
