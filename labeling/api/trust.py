"""Trust-check rates of a policy version over the JSON API (anyone who may read the version). A run's rates are
the ``trust`` object of ``GET /api/runs/{id}``."""

from django.http import Http404
from ninja import Router
from ninja.errors import HttpError

from policyhub import roles
from policyhub import selectors as policy_selectors
from policyhub.api_root import ErrorOut, require_role

from .. import services
from ..selectors.trust_rates import version_trust_rates

router = Router(tags=["trust"])


@router.get(
    "/policies/{slug}/versions/{number}/trust",
    response={200: dict, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_trust_api_version_trust",
)
def version_trust(request, slug: str, number: int):
    """Hallucination, injection, tone, judge and any-check failure rates (count, total, rate) over the version's
    labeling runs, and every run of the version with its own (``labeling.selectors.trust_rates``)."""
    require_role(request, *roles.READERS)
    try:
        policy = policy_selectors.policy_get(user=request.auth, slug=slug)
        version = policy_selectors.version_get(user=request.auth, policy=policy, number=number)
    except Http404 as exc:
        raise HttpError(404, str(exc)) from None
    rates = version_trust_rates(version=version, rates_of=services.runs_trust)
    return {"policy": policy.slug, "version": version.number, **rates.as_dict()}
