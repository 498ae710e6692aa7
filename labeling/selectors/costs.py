"""What a run has paid so far, by kind of token (input, cached input, output) and per 1,000 labelled pairs; what a
version's labeling runs paid per 1,000 labelled pairs (the policy's trends)."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, F, Sum

from ..models import Candidate, LabelingRun
from ..pipeline.pricing import CostParts, cost_parts


@dataclass(frozen=True)
class RunCosts:
    teacher: CostParts
    uncached_input_tokens: int
    judge: CostParts | None  # None: the run has no judge
    labelled_pairs: int  # candidates holding a teacher label
    per_1000_pairs: Decimal | None  # teacher + judge cost per 1,000 labelled pairs; None before the first label


def run_costs(*, run: LabelingRun, labelled: int | None = None) -> RunCosts:
    """The run's token counters priced under its config snapshots (the judge is priced online, as it runs);
    ``labelled``: its candidates holding a label, when the caller has it (the run page's kept figures)."""
    teacher = cost_parts(run.config_snapshot, run.input_tokens, run.output_tokens, run.mode, run.cached_input_tokens)
    judge = None
    if run.judge_snapshot:
        judge = cost_parts(run.judge_snapshot, run.judge_input_tokens, run.judge_output_tokens,
                           cached_input_tokens=run.judge_cached_input_tokens)  # fmt: skip
    labelled = run_labelled(run=run) if labelled is None else labelled
    per_1000 = ((run.cost + run.judge_cost) * 1000 / labelled).quantize(Decimal("0.0001")) if labelled else None
    uncached = run.input_tokens - run.cached_input_tokens
    return RunCosts(
        teacher=teacher, uncached_input_tokens=uncached, judge=judge, labelled_pairs=labelled, per_1000_pairs=per_1000
    )


def run_labelled(*, run: LabelingRun) -> int:
    return run.candidates.exclude(label="").count()


@dataclass(frozen=True)
class VersionCosts:
    cost: Decimal  # teacher + judge, over the version's labeling runs
    labelled_pairs: int
    per_1000_pairs: Decimal | None  # None before the first label


def versions_costs(*, version_ids: list[int], labelled: dict[int, int] | None = None) -> dict[int, VersionCosts]:
    """{version id: what its labeling runs paid and per 1,000 labelled pairs} (two grouped queries), worked out as
    ``run_costs`` does for one run; gold scores and draft previews are evaluations, not labeling, and left out.
    ``labelled``: {version id: labelled pairs} when the caller has them (from the runs' kept figures)."""
    runs = LabelingRun.objects.filter(policy_version_id__in=version_ids, purpose=LabelingRun.Purpose.LABELING)
    paid = dict(
        runs.order_by().values("policy_version_id").annotate(total=Sum(F("cost") + F("judge_cost")))
        .values_list("policy_version_id", "total")
    )  # fmt: skip
    labelled = labelled if labelled is not None else dict(
        Candidate.objects.filter(run__in=runs).exclude(label="").order_by().values("run__policy_version_id")
        .annotate(n=Count("id")).values_list("run__policy_version_id", "n")
    )  # fmt: skip
    result = {}
    for pk in version_ids:
        cost, n = paid.get(pk) or Decimal(0), labelled.get(pk, 0)
        per_1000 = (cost * 1000 / n).quantize(Decimal("0.0001")) if n else None
        result[pk] = VersionCosts(cost=cost, labelled_pairs=n, per_1000_pairs=per_1000)
    return result
