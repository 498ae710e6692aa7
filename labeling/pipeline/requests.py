"""The requests a set of a run's candidates still needs: the (pair, sample index) answers without a stored
sample, each with its cache key; the response cache answers what it can, so nothing is paid for twice.

A pair's missing samples are ONE request (online, or one batch line) asking for that many choices (``n``, see
``TeacherRequest.choices``): the prompt is sent and billed once per pair, not once per sample; an endpoint that
refuses ``n > 1`` gets one request per sample (``one_per_sample``). Either way every answer is keyed, cached and
stored per sample index.

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
    ctx: RunContext, rows: QuerySet[Candidate], candidates: list[Candidate], *, skip=frozenset(), only=None,
    one_per_sample: bool = False,
) -> Work:  # fmt: skip
    """The requests of ``candidates`` (the rows of the queryset ``rows``) for the samples not stored yet, in
    candidate then sample order: one per pair asking for each missing sample as a choice, or with
    ``one_per_sample`` one per sample; ``skip`` leaves out, and ``only`` keeps only, the given keys."""
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
        wanted = [
            key for key in ((candidate.pair_id, index) for index in range(ctx.k))
            if key not in have and key not in skip and (only is None or key in only)
        ]  # fmt: skip
        if not wanted:
            continue
        keys.update(zip(wanted, ctx.keys.keys(messages, [index for _pair, index in wanted]), strict=True))
        request = TeacherRequest(key=wanted[0], messages=messages, sample_index=wanted[0][1],
                                 facts={"member": member, "job": job})  # fmt: skip
        requests += [request.asking([key]) for key in wanted] if one_per_sample else [request.asking(wanted)]
    return Work(candidates=candidates, facts=facts, requests=requests, keys=keys)


def answer_from_cache(work: Work) -> Work:
    """Move the answers the response cache holds out of ``work.requests`` (a request left with no choice to ask
    for is dropped) into ``work.cached``."""
    work.cached = cached_answers(work.keys)
    if work.cached:
        requests = []
        for request in work.requests:
            left = [key for key in request.answer_keys if key not in work.cached]
            if left:
                requests.append(request if len(left) == len(request.answer_keys) else request.asking(left))
        work.requests = requests
    return work


def cached_answers(keys: dict[Key, str]) -> dict[Key, TeacherAnswer]:
    """The cached answers of the requests ``keys`` ({request key: cache key}) names."""
    found: dict[Key, TeacherAnswer] = {}
    if not keys:
        return found
    by_key = {row.key: row for row in ResponseCache.objects.filter(key__in=set(keys.values()))}
    for key, cache_key in keys.items():
        row = by_key.get(cache_key)
        if row:
            found[key] = TeacherAnswer(
                key=key, label=row.answer["label"], rationale=row.answer["rationale"],
                cited_rules=row.answer["cited_rules"], label_probs=row.answer.get("label_probs"),
                raw=row.answer.get("raw", ""), input_tokens=row.input_tokens, output_tokens=row.output_tokens,
                attempts=0, cached=True,
            )  # fmt: skip
    return found
