"""Small helpers the labeling API endpoints share: the run lookup and the target-precision parameter."""

from ninja.errors import HttpError

from .. import selectors
from ..evaluation import parse_target_precision
from ..models import LabelingRun


def run_or_404(run_id: int, user) -> LabelingRun:
    """The run as ``user`` may see it (``selectors.run_visible``: a draft preview's runs are its owners' only)."""
    try:
        return selectors.run_visible(pk=run_id, user=user)
    except LabelingRun.DoesNotExist:
        raise HttpError(404, f"No run #{run_id}.") from None


def target_precision(precision: str | None) -> float:
    """The ``precision`` query parameter (0.5–1, default 0.95); anything else is a 400."""
    try:
        return parse_target_precision(precision)
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None
