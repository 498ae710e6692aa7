"""What a run has paid so far, by kind of token (input, cached input, output) and per 1,000 labelled pairs."""

from dataclasses import dataclass
from decimal import Decimal

from ..models import LabelingRun
from ..pipeline.pricing import CostParts, cost_parts


@dataclass(frozen=True)
class RunCosts:
    teacher: CostParts
    uncached_input_tokens: int
    judge: CostParts | None  # None: the run has no judge
    labelled_pairs: int  # candidates holding a teacher label
    per_1000_pairs: Decimal | None  # teacher + judge cost per 1,000 labelled pairs; None before the first label


def run_costs(*, run: LabelingRun) -> RunCosts:
    """The run's token counters priced under its config snapshots (the judge is priced online, as it runs)."""
    teacher = cost_parts(run.config_snapshot, run.input_tokens, run.output_tokens, run.mode, run.cached_input_tokens)
    judge = None
    if run.judge_snapshot:
        judge = cost_parts(run.judge_snapshot, run.judge_input_tokens, run.judge_output_tokens,
                           cached_input_tokens=run.judge_cached_input_tokens)  # fmt: skip
    labelled = run.candidates.exclude(label="").count()
    per_1000 = ((run.cost + run.judge_cost) * 1000 / labelled).quantize(Decimal("0.0001")) if labelled else None
    uncached = run.input_tokens - run.cached_input_tokens
    return RunCosts(
        teacher=teacher, uncached_input_tokens=uncached, judge=judge, labelled_pairs=labelled, per_1000_pairs=per_1000
    )
