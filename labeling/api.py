"""Import endpoints of the JSON API (mounted on the API root, ``policyhub.api_root.api``, in ``policyhub/urls.py``)."""

from ninja import File, Form, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from policyhub.api_root import ErrorOut, require_role
from policyhub.roles import ML_ENGINEER, POLICY_OWNER

from . import selectors, services
from .imports.schemas import SCHEMAS
from .models import ImportBatch, LabelingRun, TeacherConfig
from .planning import run_plan

router = Router(tags=["imports"])


class RowErrorOut(Schema):
    line: int
    field: str
    reason: str


class ImportOut(Schema):
    id: int
    kind: str
    source_name: str
    file_sha256: str
    status: str
    already_imported: bool = False
    rows_seen: int
    rows_created: int
    rows_unchanged: int
    error_count: int
    errors: list[RowErrorOut]
    created_at: str
    finished_at: str | None


def _out(batch: ImportBatch, already_imported: bool = False) -> dict:
    return {
        "id": batch.pk,
        "kind": batch.kind,
        "source_name": batch.source_name,
        "file_sha256": batch.file_sha256,
        "status": batch.status,
        "already_imported": already_imported,
        "rows_seen": batch.rows_seen,
        "rows_created": batch.rows_created,
        "rows_unchanged": batch.rows_unchanged,
        "error_count": batch.error_count,
        "errors": batch.errors,
        "created_at": batch.created_at.isoformat(),
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
    }


@router.post("/imports", response={200: ImportOut, 202: ImportOut, 400: ErrorOut, 403: ErrorOut})
def create_import(request, kind: Form[str], file: File[UploadedFile]):
    """Upload members, jobs or pairs (CSV or JSONL). 202: queued, poll ``GET /api/imports/{id}``;
    200 with ``already_imported``: this exact file was imported before and nothing changed."""
    require_role(request, ML_ENGINEER)
    if kind not in SCHEMAS:
        raise HttpError(400, f"kind must be one of {', '.join(SCHEMAS)}, not {kind!r}.")
    result = services.import_upload_enqueue(kind=kind, upload=file, user=request.auth)
    return Status(200 if result.already_imported else 202, _out(result.batch, result.already_imported))


@router.get("/imports", response={200: list[ImportOut], 403: ErrorOut})
def list_imports(request):
    require_role(request, ML_ENGINEER)
    return [_out(batch) for batch in selectors.import_batch_list(with_errors=True)]


@router.get("/imports/{batch_id}", response={200: ImportOut, 403: ErrorOut, 404: ErrorOut})
def get_import(request, batch_id: int):
    require_role(request, ML_ENGINEER)
    try:
        return _out(selectors.import_batch_get(pk=batch_id))
    except ImportBatch.DoesNotExist:
        raise HttpError(404, f"No import #{batch_id}.") from None


# --- runs ------------------------------------------------------------------------------------------------------
class RunIn(Schema):
    policy: str
    version: int
    teacher: str
    selection: dict = {"all": True}
    thresholds: dict = {}
    chunk_size: int = 500
    mode: str = "online"
    reviewers_per_item: int = 1


class BatchJobOut(Schema):
    attempt: int
    openai_batch_id: str
    status: str
    openai_status: str
    request_count: int
    completed_count: int
    failed_count: int


class RunOut(Schema):
    id: int
    policy: str
    version: int
    teacher: str
    mode: str
    reviewers_per_item: int
    batches: list[BatchJobOut]
    status: str
    error: str
    pairs_total: int
    samples_total: int
    samples_done: int
    samples_failed: int
    samples_cached: int
    input_tokens: int
    output_tokens: int
    cost: str
    thresholds: dict
    routing: dict


class PlanOut(Schema):
    pairs: int
    requests: int
    input_tokens_per_request: int
    output_tokens_per_request: int
    token_basis: str
    estimated_input_tokens: int
    estimated_output_tokens: int
    estimated_cost: str
    price_factor: str
    cached_share: float
    is_llm: bool
    example_messages: list[dict]


class CandidateOut(Schema):
    pair_id: int
    member_id: str
    job_id: str
    status: str
    label: str
    label_distribution: dict
    confidence: float | None
    vote_share: float | None
    routing: str
    reasons: list[str]
    trust: dict


def _run_out(run: LabelingRun) -> dict:
    summary = selectors.run_routing_summary(run=run)
    return {
        "id": run.pk,
        "policy": run.policy_version.policy.slug,
        "version": run.policy_version.number,
        "teacher": run.teacher_config.name,
        "mode": run.mode,
        "reviewers_per_item": run.reviewers_per_item,
        "batches": list(run.batch_jobs.values(*BatchJobOut.model_fields)),
        "status": run.status,
        "error": run.error,
        **{f: getattr(run, f) for f in ("pairs_total", "samples_total", "samples_done", "samples_failed",
                                         "samples_cached", "input_tokens", "output_tokens")},
        "cost": str(run.cost),
        "thresholds": run.thresholds,
        "routing": {"auto_accepted": summary["auto_accepted"], "needs_review": summary["needs_review"],
                    "failed": summary["failed"], "pending": summary["pending"], "reasons": summary["reasons"]},
    }  # fmt: skip


def _resolve(payload: RunIn):
    from policyhub.models import PolicyVersion

    version = PolicyVersion.objects.filter(policy__slug=payload.policy, number=payload.version).first()
    if version is None:
        raise HttpError(404, f"No version {payload.version} of policy {payload.policy!r}.")
    config = TeacherConfig.objects.filter(name=payload.teacher).first()
    if config is None:
        raise HttpError(404, f"No teacher config {payload.teacher!r}.")
    return version, config


@router.post("/runs/plan", response={200: PlanOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut}, tags=["runs"])
def plan_run(request, payload: RunIn):
    """Dry run: one rendered request and the estimated tokens and cost, without calling the teacher."""
    require_role(request, ML_ENGINEER)
    version, config = _resolve(payload)
    plan = run_plan(version=version, config=config, selection=payload.selection, mode=payload.mode)
    return {**plan.__dict__, "estimated_cost": str(plan.estimated_cost), "price_factor": str(plan.price_factor)}


@router.post("/runs", response={200: RunOut, 201: RunOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut}, tags=["runs"])
def create_run(request, payload: RunIn):
    """Start a run. Send an ``Idempotency-Key`` header to make retries safe: the same key returns the same run."""
    require_role(request, ML_ENGINEER)
    version, config = _resolve(payload)
    key = request.headers.get("Idempotency-Key", "")[:200]
    existed = bool(key) and LabelingRun.objects.filter(created_by=request.auth, idempotency_key=key).exists()
    run = services.labeling_run_create(
        version=version, config=config, selection=payload.selection, thresholds=payload.thresholds,
        chunk_size=payload.chunk_size, user=request.auth, idempotency_key=key, mode=payload.mode,
        reviewers_per_item=payload.reviewers_per_item,
    )  # fmt: skip
    return Status(200 if existed else 201, _run_out(selectors.run_get(pk=run.pk)))


def _run(request, run_id: int) -> LabelingRun:
    try:
        return selectors.run_visible(pk=run_id, user=request.auth)
    except LabelingRun.DoesNotExist:
        raise HttpError(404, f"No run #{run_id}.") from None


@router.get("/runs/{run_id}", response={200: RunOut, 403: ErrorOut, 404: ErrorOut}, tags=["runs"])
def get_run(request, run_id: int):
    require_role(request, ML_ENGINEER)
    return _run_out(_run(request, run_id))


@router.post(
    "/runs/{run_id}/cancel", response={200: RunOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut}, tags=["runs"]
)
def cancel_run(request, run_id: int):
    require_role(request, ML_ENGINEER)
    return _run_out(services.labeling_run_cancel(run=_run(request, run_id), user=request.auth))


@router.post(
    "/runs/{run_id}/resume", response={200: RunOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut}, tags=["runs"]
)
def resume_run(request, run_id: int):
    require_role(request, ML_ENGINEER)
    return _run_out(services.labeling_run_resume(run=_run(request, run_id), user=request.auth))


@router.get(
    "/runs/{run_id}/candidates", response={200: list[CandidateOut], 403: ErrorOut, 404: ErrorOut}, tags=["runs"]
)
def list_candidates(request, run_id: int, routing: str = "", reason: str = "", limit: int = 100, offset: int = 0):
    require_role(request, ML_ENGINEER)
    limit = max(1, min(limit, 1000))
    rows = selectors.run_candidates(run=_run(request, run_id), routing=routing, reason=reason)[offset : offset + limit]
    return [
        {
            "pair_id": c.pair_id,
            "member_id": c.pair.member.external_id,
            "job_id": c.pair.job.external_id,
            "status": c.status,
            "label": c.label,
            "label_distribution": c.label_distribution,
            "confidence": c.confidence,
            "vote_share": c.vote_share,
            "routing": c.routing,
            "reasons": c.reasons,
            "trust": c.trust,
        }  # fmt: skip
        for c in rows
    ]


# --- Label Studio ----------------------------------------------------------------------------------------------
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


@router.get("/runs/{run_id}/labelstudio", response={200: LabelStudioOut, 403: ErrorOut, 404: ErrorOut}, tags=["runs"])
def get_labelstudio(request, run_id: int):
    """The run's Label Studio project (``project_id`` null before the first push) and the last pull's report."""
    require_role(request, ML_ENGINEER, POLICY_OWNER)
    link = selectors.run_labelstudio(run=_run(request, run_id))
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


@router.post("/runs/{run_id}/labelstudio/push", response={200: PushOut, **_LS_ERRORS}, tags=["runs"])
def push_labelstudio(request, run_id: int):
    """Create or reuse the run's Label Studio project and add the needs-review items it lacks (synchronous)."""
    require_role(request, ML_ENGINEER, POLICY_OWNER)
    run = _run(request, run_id)
    result = _labelstudio(lambda: services.labelstudio_push(run=run))
    return {f: getattr(result, f) for f in PushOut.model_fields}


@router.post("/runs/{run_id}/labelstudio/pull", response={200: PullOut, **_LS_ERRORS}, tags=["runs"])
def pull_labelstudio(request, run_id: int):
    """Apply the project's new annotations as reviews and report what was applied, already imported or skipped."""
    require_role(request, ML_ENGINEER, POLICY_OWNER)
    run = _run(request, run_id)
    return _labelstudio(lambda: services.labelstudio_pull(run=run)).as_dict()
