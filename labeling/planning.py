"""Plan before you pay: what a run would send and roughly what it would cost, without calling the teacher.

Token counts are estimated at 4 characters per token (OpenAI's rule of thumb for English; tiktoken would need
to download its BPE files, which this deployment cannot assume). Answers are estimated at
``ANSWER_TOKENS`` tokens. Requests whose answers are already cached are counted as free.
"""

from dataclasses import dataclass
from decimal import Decimal

from policyhub.models import PolicyVersion

from .models import ResponseCache, TeacherConfig
from .services.runs import cache_key, label_space, pairs_for_selection, run_system_prompt
from .teacher import request_parameters
from .teacher.messages import build_messages, job_facts, member_facts

CHARS_PER_TOKEN = 4
ANSWER_TOKENS = 90


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class RunPlan:
    pairs: int
    requests: int
    sampled_pairs: int
    example_messages: list[dict]
    input_tokens_per_request: int
    output_tokens_per_request: int
    cached_share: float
    estimated_input_tokens: int
    estimated_output_tokens: int
    estimated_cost: Decimal
    is_llm: bool


def run_plan(*, version: PolicyVersion, config: TeacherConfig, selection: dict, sample_size: int = 20) -> RunPlan:
    pairs = pairs_for_selection(selection)
    total = pairs.count()
    sample = list(pairs.select_related("member", "job")[:sample_size])
    system_prompt = run_system_prompt(version)
    snapshot = config.snapshot()
    k = config.samples_per_pair
    is_llm = config.provider != TeacherConfig.Provider.HEURISTIC
    message_sets = [build_messages(system_prompt, member_facts(p.member), job_facts(p.job)) for p in sample]
    per_request = sum(estimate_tokens(m[0]["content"]) + estimate_tokens(m[1]["content"]) for m in message_sets) // max(
        1, len(message_sets)
    )
    cached_share = 0.0
    if is_llm and message_sets:
        params = request_parameters(snapshot, label_space(version))
        keys = [cache_key(params, m, i) for m in message_sets for i in range(k)]
        cached_share = ResponseCache.objects.filter(key__in=keys).count() / len(keys)
    requests = total * k if is_llm else total
    billable = round(requests * (1 - cached_share)) if is_llm else 0
    input_tokens, output_tokens = billable * per_request, billable * ANSWER_TOKENS
    cost = (
        Decimal(input_tokens) * config.price_input_per_mtok + Decimal(output_tokens) * config.price_output_per_mtok
    ) / Decimal(1_000_000)
    return RunPlan(
        pairs=total,
        requests=requests,
        sampled_pairs=len(sample),
        example_messages=message_sets[0] if message_sets else [],
        input_tokens_per_request=per_request,
        output_tokens_per_request=ANSWER_TOKENS,
        cached_share=cached_share,
        estimated_input_tokens=input_tokens,
        estimated_output_tokens=output_tokens,
        estimated_cost=cost.quantize(Decimal("0.0001")),
        is_llm=is_llm,
    )
