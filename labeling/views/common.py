"""What the labeling pages share: the run lookup (a 404 for runs the user may not see) and the target precision."""

from collections.abc import Collection

from django.http import Http404

from policyhub.models import Policy

from .. import selectors
from ..evaluation import DEFAULT_TARGET_PRECISION, parse_target_precision
from ..models import LabelingRun


def run_or_404(
    pk: int, user, *, purposes: Collection[str] | None = None, policy: Policy | None = None, missing: str = ""
) -> LabelingRun:
    """The run as ``user`` may see it (``selectors.run_visible``: a draft preview's runs are its policy owners'
    only), else a 404. Pages that show only some runs narrow it to ``purposes`` or to the runs of ``policy``;
    ``missing`` is the 404's text ("No run #pk." when blank)."""
    try:
        run = selectors.run_visible(pk=pk, user=user)
    except LabelingRun.DoesNotExist:
        run = None
    if (
        run is None
        or (purposes is not None and run.purpose not in purposes)
        or (policy is not None and run.policy_version.policy_id != policy.pk)
    ):
        raise Http404(missing or f"No run #{pk}.")
    return run


def target_precision(request) -> tuple[float, str]:
    """The ``precision`` query parameter and "", or the default and why the given one was refused (a page shows
    the message and the figures for the default)."""
    try:
        return parse_target_precision(request.GET.get("precision")), ""
    except ValueError as error:
        return DEFAULT_TARGET_PRECISION, str(error)
