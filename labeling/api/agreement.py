"""Agreement figures over the JSON API (policy owners and ML engineers)."""

from django.http import Http404
from ninja import Router
from ninja.errors import HttpError

from policyhub import selectors as policy_selectors
from policyhub.api_root import ErrorOut, require_role
from policyhub.roles import ML_ENGINEER, POLICY_OWNER

from .. import selectors, services
from .common import run_or_404, target_precision

router = Router(tags=["agreement"])
RESPONSES = {200: dict, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut}


@router.get("/runs/{run_id}/agreement", response=RESPONSES, operation_id="labeling_agreement_api_run_agreement")
def run_agreement(request, run_id: int, precision: str | None = None):
    """Inter-annotator agreement and teacher-vs-human figures for one run; ``precision`` is the target precision
    the suggested auto-accept threshold must reach (0.5–1, default 0.95)."""
    require_role(request, POLICY_OWNER, ML_ENGINEER)
    target = target_precision(precision)
    run = run_or_404(run_id, request.auth)
    snapshot = services.agreement_snapshot(run=run)
    report = selectors.snapshot_report(snapshot, version=run.policy_version, target_precision=target)
    return selectors.agreement_figures(report)


@router.get(
    "/policies/{slug}/versions/{number}/agreement",
    response=RESPONSES,
    operation_id="labeling_agreement_api_version_agreement",
)
def version_agreement(request, slug: str, number: int, precision: str | None = None):
    """The same figures over every run of a policy version. Both answers are kept figures: exact as of
    ``computed_at``; ``stale`` true means reviews changed since and a refresh is on its way."""
    require_role(request, POLICY_OWNER, ML_ENGINEER)
    target = target_precision(precision)
    try:
        policy = policy_selectors.policy_get(user=request.auth, slug=slug)
        version = policy_selectors.version_get(user=request.auth, policy=policy, number=number)
    except Http404 as exc:
        raise HttpError(404, str(exc)) from None
    snapshot = services.agreement_snapshot(version=version)
    report = selectors.snapshot_report(snapshot, version=version, target_precision=target)
    return selectors.agreement_figures(report)
