"""Label Studio endpoints of the JSON API: a run's project, push its needs-review items, pull the annotations
(ML engineers and policy owners)."""

from ninja import Router, Schema
from ninja.errors import HttpError

from policyhub.api_root import ErrorOut, require_role
from policyhub.roles import ML_ENGINEER, POLICY_OWNER

from .. import selectors, services
from .common import run_or_404

router = Router(tags=["runs"])


class LabelStudioOut(Schema):
    project_id: int | None
    url: str
    tasks_total: int
    last_push_at: str | None
    last_push_added: int
    last_pull_at: str | None
    last_pull_report: dict


class PushOut(Schema):
    project_id: int
    url: str
    created: bool
    added: int
    already_there: int


class PullOut(Schema):
    applied: list[dict]
    already_imported: int
    unknown_annotators: list[dict]
    skipped: list[dict]
    pulled_at: str


def _labelstudio(call):
    """Runs a push or pull: not configured → 503, Label Studio failing → 502, anything else refused → 400."""
    try:
        return call()
    except services.LabelStudioNotConfigured as error:
        raise HttpError(503, str(error)) from None
    except services.LabelStudioUnavailable as error:
        raise HttpError(502, str(error)) from None
    except services.LabelStudioError as error:
        raise HttpError(400, str(error)) from None


_LS_ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 502: ErrorOut, 503: ErrorOut}


@router.get(
    "/runs/{run_id}/labelstudio",
    response={200: LabelStudioOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_get_labelstudio",
)
def get_labelstudio(request, run_id: int):
    """The run's Label Studio project (``project_id`` null before the first push) and the last pull's report."""
    require_role(request, ML_ENGINEER, POLICY_OWNER)
    link = selectors.run_labelstudio(run=run_or_404(run_id, request.auth))
    if link is None:
        return {"project_id": None, "url": "", "tasks_total": 0, "last_push_at": None, "last_push_added": 0,
                "last_pull_at": None, "last_pull_report": {}}  # fmt: skip
    return {
        "project_id": link.project_id, "url": link.url, "tasks_total": link.tasks_total,
        "last_push_at": link.last_push_at.isoformat() if link.last_push_at else None,
        "last_push_added": link.last_push_added,
        "last_pull_at": link.last_pull_at.isoformat() if link.last_pull_at else None,
        "last_pull_report": link.last_pull_report,
    }  # fmt: skip


@router.post(
    "/runs/{run_id}/labelstudio/push",
    response={200: PushOut, **_LS_ERRORS},
    operation_id="labeling_api_push_labelstudio",
)
def push_labelstudio(request, run_id: int):
    """Create or reuse the run's Label Studio project and add the needs-review items it lacks (synchronous)."""
    require_role(request, ML_ENGINEER, POLICY_OWNER)
    run = run_or_404(run_id, request.auth)
    result = _labelstudio(lambda: services.labelstudio_push(run=run))
    return {f: getattr(result, f) for f in PushOut.model_fields}


@router.post(
    "/runs/{run_id}/labelstudio/pull",
    response={200: PullOut, **_LS_ERRORS},
    operation_id="labeling_api_pull_labelstudio",
)
def pull_labelstudio(request, run_id: int):
    """Apply the project's new annotations as reviews and report what was applied, already imported or skipped."""
    require_role(request, ML_ENGINEER, POLICY_OWNER)
    run = run_or_404(run_id, request.auth)
    return _labelstudio(lambda: services.labelstudio_pull(run=run)).as_dict()
