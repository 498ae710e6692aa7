"""Red-team endpoints of the JSON API: create a set, generated or uploaded as JSONL (policy owners), plan and
start a red-team run, optionally with a judge (policy owners; send ``Idempotency-Key``), cancel and resume a whole
run (policy owners), read a run and its report, compare two runs (policy owners and ML engineers; runs on a draft
are the policy owners' only)."""

import re

from ninja import File, Form, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from policyhub import roles
from policyhub.api_root import IDEMPOTENT, ErrorOut, TextIn, require_role
from policyhub.models import Policy, PolicyVersion

from ..models import LabelingRun, RedTeamRun, RedTeamSet, TeacherConfig
from ..selectors.redteam import READERS, red_team_plan
from ..selectors.redteam_report import red_team_compare, red_team_report, red_team_run_get
from ..services.redteam import (
    RedTeamError,
    RedTeamUploadError,
    red_team_custom_set_create,
    red_team_run_cancel,
    red_team_run_resume,
    red_team_run_start,
    red_team_set_create,
)
from ..services.runs import labeling_run_check_judge
from .common import teacher_or_404

router = Router(tags=["red team"])


class SetIn(TextIn):
    name: str = ""
    seed: int
    sample_size: int
    categories: list[str]
    import_batch: int | None = None


class SetOut(Schema):
    id: int
    policy: str
    name: str
    seed: int
    sample_size: int
    categories: list[str]
    variants: int
    pairs_available: int


class UploadErrorOut(Schema):
    line: int
    field: str
    reason: str


class CustomSetErrorOut(Schema):
    """An upload that created nothing: every bad line (the first 200) with its line and field."""

    detail: str
    error_count: int
    errors: list[UploadErrorOut]


class RunIn(TextIn):
    set: int
    version: int | str  # a version number, or "draft"
    teacher: str
    judge: str | int | None = None  # a second LLM teacher config (its name or id) that judges every answer


def _set_out(red_team_set: RedTeamSet) -> dict:
    return {
        "id": red_team_set.pk, "policy": red_team_set.policy.slug, "name": red_team_set.name,
        "seed": red_team_set.seed, "sample_size": red_team_set.sample_size, "categories": red_team_set.categories,
        "variants": red_team_set.variants.count(), "pairs_available": red_team_set.pairs_available,
    }  # fmt: skip


def _set(set_id: int) -> RedTeamSet:
    red_team_set = RedTeamSet.objects.select_related("policy").filter(pk=set_id).first()
    if red_team_set is None:
        raise HttpError(404, f"No red-team set #{set_id}.")
    return red_team_set


def _resolve(request, payload: RunIn):
    red_team_set = _set(payload.set)
    policy = red_team_set.policy
    if payload.version == "draft":
        if not roles.has_role(request.auth, roles.POLICY_OWNER):
            raise HttpError(403, "Drafts are the policy owners' only.")
        version = policy.versions.filter(status=PolicyVersion.Status.DRAFT).first()
    elif isinstance(payload.version, int) or re.fullmatch(r"[0-9]{1,9}", payload.version):
        version = policy.versions.filter(number=int(payload.version)).first()
        if version is not None and version.is_draft and not roles.has_role(request.auth, roles.POLICY_OWNER):
            version = None
    else:
        raise HttpError(400, f"version is a version number or 'draft', not {payload.version!r}.")
    if version is None:
        raise HttpError(404, f"No version {payload.version} of policy {policy.slug!r}.")
    config = TeacherConfig.objects.filter(name=payload.teacher).first()
    if config is None:
        raise HttpError(404, f"No teacher config {payload.teacher!r}.")
    judge = None if payload.judge in (None, "") else teacher_or_404(payload.judge)
    return red_team_set, version, config, judge


def _run(request, run_id: int) -> RedTeamRun:
    try:
        return red_team_run_get(user=request.auth, pk=run_id)
    except RedTeamRun.DoesNotExist:
        raise HttpError(404, f"No red-team run #{run_id}.") from None


@router.post(
    "/policies/{slug}/redteam/sets",
    response={201: SetOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_redteam_api_create_set",
)
def create_set(request, slug: str, payload: SetIn):
    """Sample ``sample_size`` real pairs with ``seed`` and make one variant per pair and category."""
    require_role(request, roles.POLICY_OWNER)
    policy = Policy.objects.filter(slug=slug).first()
    if policy is None:
        raise HttpError(404, f"No policy {slug!r}.")
    red_team_set = red_team_set_create(
        user=request.auth, policy=policy, name=payload.name, seed=payload.seed, sample_size=payload.sample_size,
        categories=payload.categories, import_batch_id=payload.import_batch,
    )  # fmt: skip
    return Status(201, _set_out(red_team_set))


@router.post(
    "/policies/{slug}/redteam/sets/custom",
    response={201: SetOut, 400: CustomSetErrorOut, 403: ErrorOut, 404: ErrorOut, 413: CustomSetErrorOut},
    operation_id="labeling_redteam_api_create_custom_set",
)
def create_custom_set(request, slug: str, file: File[UploadedFile], name: Form[str] = ""):
    """A set of uploaded ``custom`` variants: a JSONL file, one variant a line (``member`` and ``job`` facts, and
    ``expected_label`` or ``must_match``; optional ``expected_flag``, ``name``, ``note``). 400 lists every bad
    line with its field, and nothing is created; 413: the file is over the size cap."""
    require_role(request, roles.POLICY_OWNER)
    policy = Policy.objects.filter(slug=slug).first()
    if policy is None:
        raise HttpError(404, f"No policy {slug!r}.")
    try:
        red_team_set = red_team_custom_set_create(
            user=request.auth, policy=policy, name=name, stream=file, source=file.name or "upload.jsonl"
        )
    except RedTeamUploadError as error:
        body = {"detail": error.message, "error_count": error.error_count,
                "errors": [e.as_dict() for e in error.errors]}  # fmt: skip
        return Status(413 if error.too_large else 400, body)
    except RedTeamError as error:  # the policy cannot take a set (no labels yet): no line is at fault
        detail = " ".join(error.messages)
        return Status(400, {"detail": detail, "error_count": 1,
                            "errors": [{"line": 0, "field": "policy", "reason": detail}]})  # fmt: skip
    return Status(201, _set_out(red_team_set))


@router.get(
    "/redteam/sets/{red_team_set_id}",
    response={200: SetOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_redteam_api_get_set",
)
def get_set(request, red_team_set_id: int):
    require_role(request, *READERS)
    return _set_out(_set(red_team_set_id))


@router.post(
    "/redteam/runs/plan",
    response={200: dict, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_redteam_api_plan_run",
)
def plan_run(request, payload: RunIn):
    """What the run would send and cost, part by part (the clean originals, then each category), with the
    judge's requests when ``judge`` is given, without calling the teacher."""
    require_role(request, *READERS)
    red_team_set, version, config, judge = _resolve(request, payload)
    labeling_run_check_judge(judge=judge, mode=LabelingRun.Mode.ONLINE)  # a 400 naming why it cannot judge
    plan = red_team_plan(user=request.auth, red_team_set=red_team_set, version=version, config=config, judge=judge)
    return plan.as_dict()


@router.post(
    "/redteam/runs",
    response={200: dict, 201: dict, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_redteam_api_start_run",
    openapi_extra=IDEMPOTENT,
)
def start_run(request, payload: RunIn):
    """Label the set's originals and variants under the version (or the saved draft) with the teacher config,
    and with ``judge`` have a second LLM config judge every answer (online; red-team runs have no batch mode). The
    same ``Idempotency-Key`` returns the same run (200) instead of starting another (201)."""
    require_role(request, roles.POLICY_OWNER)
    red_team_set, version, config, judge = _resolve(request, payload)
    key = request.headers.get("Idempotency-Key", "")[:200]
    existed = bool(key) and RedTeamRun.objects.filter(created_by=request.auth, idempotency_key=key).exists()
    run = red_team_run_start(user=request.auth, red_team_set=red_team_set, version=version, config=config,
                             idempotency_key=key, judge=judge)  # fmt: skip
    return Status(200 if existed else 201, red_team_report(run=_run(request, run.pk), examples=0).as_dict())


@router.get(
    "/redteam/runs/{red_team_run_id}",
    response={200: dict, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_redteam_api_get_run",
)
def get_run(request, red_team_run_id: int):
    """The run's state, progress and figures (no examples)."""
    return red_team_report(run=_run(request, red_team_run_id), examples=0).as_dict()


@router.post(
    "/redteam/runs/{red_team_run_id}/cancel",
    response={200: dict, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_redteam_api_cancel_run",
)
def cancel_run(request, red_team_run_id: int):
    """Cancel every queued or running part (answers already stored are kept); 400 when none is."""
    require_role(request, roles.POLICY_OWNER)
    run = red_team_run_cancel(user=request.auth, run=_run(request, red_team_run_id))
    return red_team_report(run=_run(request, run.pk), examples=0).as_dict()


@router.post(
    "/redteam/runs/{red_team_run_id}/resume",
    response={200: dict, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_redteam_api_resume_run",
)
def resume_run(request, red_team_run_id: int):
    """Resume every cancelled or failed part: their unfinished chunks are queued again; 400 when none is."""
    require_role(request, roles.POLICY_OWNER)
    run = red_team_run_resume(user=request.auth, run=_run(request, red_team_run_id))
    return red_team_report(run=_run(request, run.pk), examples=0).as_dict()


@router.get(
    "/redteam/runs/{red_team_run_id}/report",
    response={200: dict, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_redteam_api_run_report",
)
def run_report(request, red_team_run_id: int):
    """Attack success, flags and tone failures per category, flips per protected attribute, and examples
    (original → variant diff, clean label → variant label, rationale, why it counts)."""
    return red_team_report(run=_run(request, red_team_run_id)).as_dict()


@router.get(
    "/redteam/runs/{red_team_run_id}/compare/{other_id}",
    response={200: dict, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_redteam_api_compare_runs",
)
def compare_runs(request, red_team_run_id: int, other_id: int):
    """Run ``red_team_run_id`` (before) and ``other_id`` (after) side by side: per category the attack success of
    both, the change and whether it regressed, and the variants that did."""
    before, after = _run(request, red_team_run_id), _run(request, other_id)
    return red_team_compare(before=before, after=after).as_dict()
