"""Small helpers the labeling API endpoints share: the run, policy and teacher lookups, the target-precision
parameter and the evaluation figures' schema."""

from collections.abc import Collection

from ninja import Field, Schema
from ninja.errors import HttpError

from policyhub import selectors as policy_selectors

from .. import selectors
from ..evaluation import parse_target_precision
from ..models import LabelingRun, TeacherConfig


def run_or_404(
    run_id: int, user, *, purposes: Collection[str] | None = None, policy=None, missing: str = ""
) -> LabelingRun:
    """The run as ``user`` may see it (``selectors.run_visible``: a draft preview's runs are its owners' only),
    narrowed to ``purposes`` or the runs of ``policy`` as the page does; ``missing``: the 404's text."""
    try:
        run = selectors.run_visible(pk=run_id, user=user)
    except LabelingRun.DoesNotExist:
        run = None
    if (
        run is None
        or (purposes is not None and run.purpose not in purposes)
        or (policy is not None and run.policy_version.policy_id != policy.pk)
    ):
        raise HttpError(404, missing or f"No run #{run_id}.")
    return run


def target_precision(precision: str | None) -> float:
    """The ``precision`` query parameter (0.5–1, default 0.95); anything else is a 400."""
    try:
        return parse_target_precision(precision)
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None


def policy_or_404(request, slug: str):
    """The policy as the caller may see it; a 404 saying which otherwise."""
    return policy_selectors.policy_get(user=request.auth, slug=slug)  # its Http404 keeps its message


def teacher_or_404(ref: str | int) -> TeacherConfig:
    """A teacher config by its name or id."""
    by = {"pk": ref} if isinstance(ref, int) else {"name": ref}
    config = TeacherConfig.objects.filter(**by).first()
    if config is None:
        raise HttpError(404, f"No teacher config {ref!r}.")
    return config


class EvaluationOut(Schema):
    """Teacher labels against the truth (here: the gold labels), as the pages show them."""

    items: int = Field(description="Pairs with both a teacher label and a gold label.")
    accuracy: float | None
    labels: list[str]
    confusion: list[list[int]] = Field(description="Rows: gold label, columns: teacher label, in ``labels`` order.")
    per_rule: list[dict] = Field(description="Accuracy by cited rule: ``{rule, items, correct}``.")
    ece: float | None = Field(description="Expected calibration error.")
    reliability: list[dict] = Field(description="``{low, high, items, confidence, accuracy}`` per non-empty bin.")
    threshold: dict = Field(
        description="The lowest auto-accept confidence keeping the target precision: "
        "``{target_precision, threshold, precision, accepted, items}``."
    )
