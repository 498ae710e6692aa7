"""What a run pays for tokens: the teacher config's prices per million tokens, times the batch discount in batch
mode. Input tokens the provider read from its prompt cache (``usage.prompt_tokens_details.cached_tokens``, a part
of ``prompt_tokens``) pay the config's cached-input price, or the input price when it has none. The plan, the
run's running cost and the run page's split all use :func:`cost_parts`."""

from dataclasses import dataclass
from decimal import Decimal

from ..models import LabelingRun

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class CostParts:
    input: Decimal  # the input tokens not read from the prompt cache
    cached_input: Decimal
    output: Decimal

    @property
    def total(self) -> Decimal:
        return self.input + self.cached_input + self.output


def price_factor(snapshot: dict, mode: str) -> Decimal:
    """What share of the listed prices a run pays: the batch discount in batch mode (configs saved before the
    factor existed get the Batch API's half price), else all of it."""
    if mode != LabelingRun.Mode.BATCH:
        return Decimal(1)
    return Decimal(snapshot.get("batch_price_factor", "0.5"))


def cached_input_price(snapshot: dict) -> Decimal:
    """The price per million cached input tokens: the config's, else (none set, or a snapshot from before the
    field existed) the input price."""
    return Decimal(snapshot.get("price_cached_input_per_mtok") or snapshot["price_input_per_mtok"])


def cost_parts(snapshot: dict, input_tokens: int, output_tokens: int, mode: str = LabelingRun.Mode.ONLINE,
               cached_input_tokens: int = 0) -> CostParts:  # fmt: skip
    """The cost of these tokens under a config snapshot (``TeacherConfig.snapshot()``) in ``mode``, by kind;
    ``input_tokens`` include the ``cached_input_tokens``."""
    scale = price_factor(snapshot, mode) / MILLION
    cached = min(cached_input_tokens, input_tokens)
    return CostParts(
        input=Decimal(input_tokens - cached) * Decimal(snapshot["price_input_per_mtok"]) * scale,
        cached_input=Decimal(cached) * cached_input_price(snapshot) * scale,
        output=Decimal(output_tokens) * Decimal(snapshot["price_output_per_mtok"]) * scale,
    )


def price(snapshot: dict, input_tokens: int, output_tokens: int, mode: str = LabelingRun.Mode.ONLINE,
          cached_input_tokens: int = 0) -> Decimal:  # fmt: skip
    """The total of :func:`cost_parts`."""
    return cost_parts(snapshot, input_tokens, output_tokens, mode, cached_input_tokens).total
