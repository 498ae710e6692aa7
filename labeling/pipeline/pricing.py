"""What a run pays for tokens: the teacher config's prices per million tokens, times the batch discount in batch
mode. The plan and the run's running cost both use :func:`price`."""

from decimal import Decimal

from ..models import LabelingRun

MILLION = Decimal(1_000_000)


def price_factor(snapshot: dict, mode: str) -> Decimal:
    """What share of the listed prices a run pays: the batch discount in batch mode (configs saved before the
    factor existed get the Batch API's half price), else all of it."""
    if mode != LabelingRun.Mode.BATCH:
        return Decimal(1)
    return Decimal(snapshot.get("batch_price_factor", "0.5"))


def price(snapshot: dict, input_tokens: int, output_tokens: int, mode: str = LabelingRun.Mode.ONLINE) -> Decimal:
    """The cost of these tokens under a config snapshot (``TeacherConfig.snapshot()``) in ``mode``."""
    listed = Decimal(input_tokens) * Decimal(snapshot["price_input_per_mtok"]) + Decimal(output_tokens) * Decimal(
        snapshot["price_output_per_mtok"]
    )
    return listed * price_factor(snapshot, mode) / MILLION
