"""The judge of a run (``LabelingRun.judge_config``): every valid answer goes, with its pair and the rules it
cites, to a second teacher config, whose verdict (grounded, consistent with the cited rules) is the
``judge_verdict`` trust check.

Judging happens in a chunk just before its answers are flushed: the verdicts are stored on the samples, the
judge's fresh replies in the response cache and its tokens and cost on the run's ``judge_*`` counters, in the
flush's transaction under the chunk's lease. So a re-delivered chunk judges only what was never stored, and a
second run over the same answers finds every verdict in the cache. A reply that stays unreadable after the
provider's retries is kept as a verdict with an ``error``: the check fails (an unjudged answer is not trusted).
Cancelling a run stops the teacher's requests, not the judging of the answers already paid for. Batch-mode runs
have no judge (refused at creation).
"""

from dataclasses import dataclass, replace

from ..models import LabelingRun, ResponseCache
from ..teacher import TeacherAnswer, TeacherRequest
from ..teacher.openai_provider import OpenAIProvider
from ..teacher.verdicts import SYSTEM_PROMPT, JudgeAnswer, VerdictFormat, judge_messages, judge_parameters
from .context import CacheKeys, run_label_space
from .requests import Key


@dataclass
class Judged:
    """The judge's replies in one flush, with their cache keys: cached and counted with the samples."""

    answers: list[JudgeAnswer]
    keys: dict[Key, str]


class Judge:
    """A run's judge: its request parameters, cache keys and provider."""

    def __init__(self, run: LabelingRun, provider):
        self.params = judge_parameters(run.judge_snapshot)
        self.keys = CacheKeys(self.params, SYSTEM_PROMPT)
        content = run.version_content or {}
        self.labels = content.get("labels") or run.policy_version.labels
        self.rules = {rule["id"]: rule["text"] for rule in (content.get("rules") or run.policy_version.rules)}
        self.provider = provider

    @classmethod
    def of(cls, run: LabelingRun) -> "Judge | None":
        """The run's judge, or None for a run without one. Raises ``TeacherConfigError`` if it cannot be used."""
        if not run.judge_snapshot:
            return None
        provider = OpenAIProvider(
            snapshot=run.judge_snapshot, space=run_label_space(run), answer_format=VerdictFormat(run.judge_snapshot)
        )
        return cls(run, provider)

    def messages(self, member: dict, job: dict, answer) -> list[dict]:
        return judge_messages(member=member, job=job, labels=self.labels, rules=self.rules, answer=answer)

    def judge(self, facts: dict, answers: dict[Key, TeacherAnswer]) -> Judged:
        """Give every valid answer of ``answers`` without a verdict one (``answer.judge``): from the cache, else
        from the judge. ``facts``: {pair id: (member facts, job facts)}."""
        requests, keys = {}, {}  # one request per distinct cache key: K identical answers are judged once
        for key, answer in answers.items():
            if not answer.ok or answer.judge is not None:
                continue
            messages = self.messages(*facts[key[0]], answer)
            keys[key] = cache_key = self.keys.key(messages, 0)
            requests.setdefault(cache_key, TeacherRequest(key=key, messages=messages, sample_index=0))
        replies = cached_verdicts({request.key: cache_key for cache_key, request in requests.items()})
        known = {reply.key for reply in replies}
        replies += self.provider.answer_stream([r for r in requests.values() if r.key not in known])
        by_cache_key = {keys[reply.key]: reply for reply in replies}
        for key, cache_key in keys.items():
            reply = by_cache_key.get(cache_key)
            if reply is None:  # not answered (the provider stopped): no verdict, the check fails
                continue
            if reply.key != key:  # the same request as another answer's: its verdict, paid once
                reply = replace(reply, key=key, cached=True)
                replies.append(reply)
            answers[key].judge = verdict_record(reply)
        return Judged(answers=replies, keys=keys)


def cached_verdicts(keys: dict[Key, str]) -> list[JudgeAnswer]:
    if not keys:
        return []
    by_key = {row.key: row for row in ResponseCache.objects.filter(key__in=set(keys.values()))}
    return [
        JudgeAnswer(key=key, verdict=row.answer["verdict"], raw=row.answer.get("raw", ""),
                    input_tokens=row.input_tokens, output_tokens=row.output_tokens, attempts=0, cached=True)
        for key, cache_key in keys.items() if (row := by_key.get(cache_key))
    ]  # fmt: skip


def cache_payload(reply: JudgeAnswer) -> dict:
    return {"verdict": reply.verdict, "raw": reply.raw}


def verdict_record(reply: JudgeAnswer) -> dict:
    """What a sample keeps of the judge's reply on it (``TeacherSample.judge``)."""
    record = {
        "grounded": None, "unsupported_claims": [], "consistent": None, "inconsistency": "", "error": "",
        "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens, "cached": reply.cached,
        "attempts": reply.attempts,
    }  # fmt: skip
    if reply.ok:
        record.update(reply.verdict)
    else:
        record["error"] = f"{reply.error_kind}: {reply.error}"[:1000]
    return record
