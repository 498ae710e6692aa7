"""Plan before you pay: what a run would send and roughly what it would cost, without calling the teacher.

Tokens are counted from characters. The rate comes from the provider's own counts when we have them: the
answers this model gave its latest runs (``TeacherSample`` rows with their real ``input_tokens`` /
``output_tokens``; first attempts only, cached answers excluded) give characters per input token (their requests'
characters, rebuilt from the run's system prompt and the pair, over their input tokens) and tokens per answer.
Without such answers: 4 characters per token (OpenAI's rule of thumb for English; tiktoken would need to
download its BPE files, which this deployment cannot assume) and ``ANSWER_TOKENS`` tokens per answer. The plan
says which basis it used. Requests whose answers are already cached are counted as free; batch-mode runs pay the
config's ``batch_price_factor`` of the prices.

A run with a judge pays for one judge request per answer too: the plan counts them on their own line (tokens
per request from the judge model's earlier judged runs, else the rule of thumb with ``VERDICT_TOKENS`` per
verdict; the verdicts cached for answers that are cached already are free) and adds them to the total.

Samples per request: a pair's K samples are one request (or batch line) with ``n = K`` (the prompt billed
once), unless the config remembers that its endpoint refuses ``n > 1`` (``TeacherConfig.n_supported``). The
input tokens are counted per request, the output tokens per answer.

Prompt caching: the policy (the system prompt) comes first in every request, so a provider's prompt cache can
serve it to every request after the first. The plan's cached input tokens are the share of input the model's
latest runs that reported cached tokens had cached, else the system prompt's tokens on every billable request but
the first when it is at least ``PROMPT_CACHE_MIN_TOKENS`` (OpenAI caches no shorter prefix), else none. They are
priced at the config's cached-input price (the input price when it has none).
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from policyhub.models import PolicyVersion
from policyhub.prompts import system_prompt as version_system_prompt

from ..models import LabelingRun, Pair, ResponseCache, TeacherConfig, TeacherSample
from ..pipeline.context import CacheKeys, label_space
from ..pipeline.pricing import CostParts, cost_parts, price_factor
from ..teacher import TeacherAnswer, request_parameters
from ..teacher.messages import build_messages, pair_facts, user_message
from ..teacher.verdicts import SYSTEM_PROMPT as JUDGE_PROMPT
from ..teacher.verdicts import judge_messages, judge_parameters

CHARS_PER_TOKEN = 4
ANSWER_TOKENS = 90
VERDICT_TOKENS = 40
CALIBRATION_SAMPLES = 200
CALIBRATION_RUNS = 20
PROMPT_CACHE_MIN_TOKENS = 1024


def pairs_for_selection(selection: dict) -> QuerySet[Pair]:
    """The pairs a run covers: ``{"all": true}``, ``{"import_batch": id}``, ``{"pair_ids": [...]}``; optional
    ``"limit": n``. A selection of another shape is refused with what is allowed."""
    allowed = {"all", "import_batch", "pair_ids", "limit"}
    if not isinstance(selection, dict) or not selection or set(selection) - allowed:
        raise ValidationError(
            "Choose the pairs: {'all': true}, {'import_batch': <id>} or {'pair_ids': [...]}, optionally with 'limit'."
        )
    pairs = Pair.objects.order_by("id")
    if "import_batch" in selection:
        pairs = pairs.filter(import_batch_id=selection["import_batch"])
    elif "pair_ids" in selection:
        ids = selection["pair_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise ValidationError("pair_ids must be a list of pair ids.")
        pairs = pairs.filter(id__in=ids)
    elif selection.get("all") is not True:
        raise ValidationError("Choose the pairs: {'all': true}, {'import_batch': <id>} or {'pair_ids': [...]}.")
    if "limit" in selection:
        limit = selection["limit"]
        if not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit must be a positive number of pairs.")
        pairs = pairs[:limit]
    return pairs


def _own_facts(pair_ids: list[int]) -> dict[int, tuple[dict, dict]]:
    return pair_facts(Pair.objects.filter(id__in=pair_ids), pair="")


@dataclass(frozen=True)
class TokenRate:
    chars_per_token: float
    tokens_per_answer: int
    samples: int  # earlier answers the rate was measured on; 0: the rule of thumb

    @property
    def basis(self) -> str:
        if not self.samples:
            return (
                f"rule of thumb: {CHARS_PER_TOKEN} characters per token, {ANSWER_TOKENS} tokens per answer "
                "(no earlier answers from this model)"
            )
        return (
            f"provider counts: {self.chars_per_token:.2f} characters per token and {self.tokens_per_answer} "
            f"tokens per answer, measured on {self.samples} answers from the latest runs of this model"
        )


def token_rate(model: str) -> TokenRate:
    """Characters per input token and tokens per answer of ``model``, from its earlier answers if any."""
    runs = (
        LabelingRun.objects.filter(
            config_snapshot__provider=TeacherConfig.Provider.OPENAI, config_snapshot__model=model
        )
        .filter(red_team_category="")
        .order_by("-id")
    )  # a red-team variant's request is not its pair's text
    rows: list[tuple] = []
    for run_id in runs.values_list("id", flat=True).iterator():  # newest runs first, each read by its index
        rows += TeacherSample.objects.filter(
            run_id=run_id, cached=False, attempts=1, error_kind="", input_tokens__gt=0, output_tokens__gt=0
        ).values_list("run_id", "pair_id", "input_tokens", "output_tokens")[: CALIBRATION_SAMPLES - len(rows)]
        if len(rows) >= CALIBRATION_SAMPLES:
            break
    if not rows:
        return TokenRate(CHARS_PER_TOKEN, ANSWER_TOKENS, 0)
    prompts = dict(LabelingRun.objects.filter(pk__in={r[0] for r in rows}).values_list("pk", "system_prompt"))
    facts = pair_facts(Pair.objects.filter(pk__in={r[1] for r in rows}), pair="")
    chars = sum(len(prompts[run_id]) + len(user_message(*facts[pair_id])) for run_id, pair_id, _, _ in rows)
    input_tokens = sum(r[2] for r in rows)
    output_tokens = sum(r[3] for r in rows)
    return TokenRate(chars / input_tokens, max(1, round(output_tokens / len(rows))), len(rows))


@dataclass(frozen=True)
class JudgePlan:
    config: str
    requests: int  # one per answer the run will store
    input_tokens_per_request: int
    output_tokens_per_request: int
    token_basis: str
    cached_share: float
    estimated_input_tokens: int
    estimated_output_tokens: int
    estimated_cost: Decimal
    estimated_cached_input_tokens: int = 0  # of estimated_input_tokens
    costs: CostParts | None = None


@dataclass(frozen=True)
class RunPlan:
    pairs: int
    requests: int
    sampled_pairs: int
    example_messages: list[dict]
    input_tokens_per_request: int
    output_tokens_per_request: int
    token_basis: str
    cached_share: float
    estimated_input_tokens: int
    estimated_output_tokens: int
    price_factor: Decimal
    estimated_cost: Decimal  # the total: the teacher's and the judge's
    is_llm: bool
    teacher_estimated_cost: Decimal = Decimal(0)
    judge: JudgePlan | None = field(default=None)
    estimated_cached_input_tokens: int = 0  # of estimated_input_tokens: served by the provider's prompt cache
    cached_input_basis: str = ""
    teacher_costs: CostParts | None = None  # the teacher's cost by kind of token
    cost_per_1000_pairs: Decimal = Decimal(0)  # estimated_cost (teacher + judge) per 1,000 labelled pairs
    samples_per_request: int = 1  # K when a pair's samples are one request (n = K), else 1

    @property
    def uncached_input_tokens(self) -> int:
        return self.estimated_input_tokens - self.estimated_cached_input_tokens


def run_plan(
    *, version: PolicyVersion, config: TeacherConfig, selection: dict, sample_size: int = 20,
    mode: str = LabelingRun.Mode.ONLINE, judge: TeacherConfig | None = None, facts_of=None,
) -> RunPlan:  # fmt: skip
    """``facts_of(pair ids) -> {pair id: (member, job)}``: what the teacher will see (default: the pairs' own
    facts; a red-team part passes its variants')."""
    pairs = pairs_for_selection(selection)
    total = pairs.count()
    sample_ids = list(pairs.values_list("id", flat=True)[:sample_size])
    facts = (facts_of or _own_facts)(sample_ids)
    system_prompt = version_system_prompt(version)
    snapshot = config.snapshot()
    k = config.samples_per_pair
    is_llm = config.provider != TeacherConfig.Provider.HEURISTIC
    message_sets = [build_messages(system_prompt, *facts[pair_id]) for pair_id in sample_ids]
    rate = token_rate(config.model) if is_llm else TokenRate(CHARS_PER_TOKEN, ANSWER_TOKENS, 0)
    chars = sum(len(m[0]["content"]) + len(m[1]["content"]) for m in message_sets) / max(1, len(message_sets))
    per_request = max(1, round(chars / rate.chars_per_token))
    cached_share, cached = 0.0, {}
    if is_llm and message_sets:
        keys = CacheKeys(request_parameters(snapshot, label_space(version)), system_prompt)
        wanted = {(n, i): keys.key(m, i) for n, m in enumerate(message_sets) for i in range(k)}
        rows = dict(ResponseCache.objects.filter(key__in=wanted.values()).values_list("key", "answer"))
        cached = {(sample_ids[n], i): rows[key] for (n, i), key in wanted.items() if key in rows}
        cached_share = len(cached) / len(wanted)
    # A pair's K samples are one request or batch line (n = K) unless the config's endpoint is known to refuse that.
    per_pair = k > 1 and config.n_supported is not False
    samples_per_request = k if per_pair else 1
    requests = (total * k) // samples_per_request if is_llm else total
    billable_answers = round(total * k * (1 - cached_share)) if is_llm else 0
    billable = -(-billable_answers // samples_per_request)  # requests with at least one sample to pay for
    input_tokens, output_tokens = billable * per_request, billable_answers * rate.tokens_per_answer
    measured = LabelingRun.objects.filter(config_snapshot__model=config.model, cached_input_tokens__gt=0)
    measured = measured.order_by("-id").values_list("cached_input_tokens", "input_tokens")[:CALIBRATION_RUNS]
    static_tokens = round(len(system_prompt) / rate.chars_per_token)
    cached_input, cached_basis = cached_input_estimate(list(measured), static_tokens, billable, input_tokens)
    factor = price_factor(snapshot, mode)
    parts = cost_parts(snapshot, input_tokens, output_tokens, mode, cached_input)
    cost = parts.total.quantize(Decimal("0.0001"))
    judged = None
    if judge is not None:
        answer_chars = round(rate.tokens_per_answer * rate.chars_per_token)
        judged = judge_plan(version=version, judge=judge, answers=total * k, facts=facts, sample_ids=sample_ids,
                            k=k, cached_answers=cached, answer_chars=answer_chars)  # fmt: skip
    total_cost = cost + (judged.estimated_cost if judged else 0)
    return RunPlan(
        pairs=total,
        requests=requests,
        samples_per_request=samples_per_request if is_llm else 1,
        sampled_pairs=len(message_sets),
        example_messages=message_sets[0] if message_sets else [],
        input_tokens_per_request=per_request,
        output_tokens_per_request=rate.tokens_per_answer,
        token_basis=rate.basis if is_llm else "no tokens: the heuristic baseline is computed locally",
        cached_share=cached_share,
        estimated_input_tokens=input_tokens,
        estimated_output_tokens=output_tokens,
        price_factor=factor,
        estimated_cost=total_cost,
        is_llm=is_llm,
        teacher_estimated_cost=cost,
        judge=judged,
        estimated_cached_input_tokens=cached_input,
        cached_input_basis=cached_basis if is_llm else "",
        teacher_costs=parts,
        cost_per_1000_pairs=(total_cost * 1000 / total).quantize(Decimal("0.0001")) if total else Decimal(0),
    )


def cached_input_estimate(measured: list[tuple[int, int]], static_tokens: int, requests: int,
                          input_tokens: int) -> tuple[int, str]:  # fmt: skip
    """(cached input tokens, basis) for ``requests`` billable requests of ``input_tokens`` in all whose prompts
    start with ``static_tokens`` of static text; ``measured``: (cached, input) tokens of earlier runs."""
    cached, seen = sum(m[0] for m in measured), sum(m[1] for m in measured)
    if seen:
        share = cached / seen
        return round(input_tokens * share), f"{share:.0%} of the input, as in {len(measured)} earlier runs"
    if static_tokens >= PROMPT_CACHE_MIN_TOKENS and requests > 1:
        return min(input_tokens, (requests - 1) * static_tokens), (
            f"the policy's {static_tokens} tokens on every request but the first (no earlier runs reported any)"
        )
    return 0, f"none: the policy's {static_tokens} tokens are below the {PROMPT_CACHE_MIN_TOKENS}-token minimum"


def judge_rate(model: str) -> tuple[int, int, int] | None:
    """(input, output tokens per judge request, requests measured) from the latest runs judged by ``model``."""
    runs = LabelingRun.objects.filter(judge_snapshot__model=model).order_by("-id")[:CALIBRATION_RUNS]
    measured = [(r.judge_requests - r.judge_cached, r.judge_input_tokens, r.judge_output_tokens) for r in runs]
    requests = sum(m[0] for m in measured)
    if requests <= 0:
        return None
    per_input = max(1, round(sum(m[1] for m in measured) / requests))
    return per_input, max(1, round(sum(m[2] for m in measured) / requests)), requests


def judge_plan(*, version: PolicyVersion, judge: TeacherConfig, answers: int, facts: dict, sample_ids: list[int],
               k: int, cached_answers: dict, answer_chars: int) -> JudgePlan:  # fmt: skip
    """The judge's part of a plan: one request per answer; ``cached_answers`` ({(pair id, sample): cached
    answer}) are the answers known already, whose verdicts may be cached too."""
    snapshot = judge.snapshot()
    keys = CacheKeys(judge_parameters(snapshot), JUDGE_PROMPT)
    rules = {rule["id"]: rule["text"] for rule in version.rules}
    stand_in = TeacherAnswer(key=None, label=version.label_keys[0] if version.label_keys else "",
                             rationale="x" * answer_chars, cited_rules=list(version.rule_ids[:1]))  # fmt: skip
    example = [judge_messages(member=m, job=j, labels=version.labels, rules=rules, answer=stand_in)
               for m, j in (facts[pair_id] for pair_id in sample_ids)]  # fmt: skip
    hits = 0
    if cached_answers:
        wanted = []
        for (pair_id, index), cached in cached_answers.items():
            said = TeacherAnswer(key=(pair_id, index), label=cached["label"], rationale=cached["rationale"],
                                 cited_rules=cached["cited_rules"])  # fmt: skip
            messages = judge_messages(member=facts[pair_id][0], job=facts[pair_id][1], labels=version.labels,
                                      rules=rules, answer=said)  # fmt: skip
            wanted.append(keys.key(messages, 0))
        present = set(ResponseCache.objects.filter(key__in=wanted).values_list("key", flat=True))
        hits = sum(1 for key in wanted if key in present)  # K identical answers share one verdict
    cached_share = hits / (len(sample_ids) * k) if sample_ids else 0.0
    measured = judge_rate(judge.model)
    if measured:
        per_in, per_out, seen = measured
        basis = f"provider counts of {seen} earlier judge requests of this model"
    else:
        chars = sum(len(m[0]["content"]) + len(m[1]["content"]) for m in example) / max(1, len(example))
        per_in, per_out = max(1, round(chars / CHARS_PER_TOKEN)), VERDICT_TOKENS
        basis = (f"rule of thumb: {CHARS_PER_TOKEN} characters per token, {VERDICT_TOKENS} tokens per verdict "
                 "(no earlier judge requests from this model)")  # fmt: skip
    billable = round(answers * (1 - cached_share))
    input_tokens, output_tokens = billable * per_in, billable * per_out
    measured_cache = LabelingRun.objects.filter(judge_snapshot__model=judge.model, judge_cached_input_tokens__gt=0)
    measured_cache = measured_cache.order_by("-id").values_list("judge_cached_input_tokens", "judge_input_tokens")
    cached_input, _ = cached_input_estimate(
        list(measured_cache[:CALIBRATION_RUNS]), round(len(JUDGE_PROMPT) / CHARS_PER_TOKEN), billable, input_tokens
    )
    parts = cost_parts(snapshot, input_tokens, output_tokens, cached_input_tokens=cached_input)
    return JudgePlan(
        config=judge.name, requests=answers, input_tokens_per_request=per_in, output_tokens_per_request=per_out,
        token_basis=basis, cached_share=cached_share, estimated_input_tokens=input_tokens,
        estimated_output_tokens=output_tokens,
        estimated_cost=parts.total.quantize(Decimal("0.0001")), estimated_cached_input_tokens=cached_input,
        costs=parts,
    )  # fmt: skip
