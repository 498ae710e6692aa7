"""Run endpoints of the JSON API: plan, start, read, cancel and resume labeling runs, list their candidates
(ML engineers)."""

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal

from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from policyhub.api_root import IDEMPOTENT, ErrorOut, TextIn, require_role
from policyhub.models import PolicyVersion
from policyhub.roles import ML_ENGINEER

from .. import selectors, services
from ..models import LabelingRun, TeacherConfig
from ..selectors.planning import run_plan
from .common import run_or_404

router = Router(tags=["runs"])


class RunIn(TextIn):
    policy: str
    version: int
    teacher: str
    selection: dict = {"all": True}
    thresholds: dict = {}
    checks: dict = {}
    chunk_size: int = 500
    mode: str = "online"
    reviewers_per_item: int = 1
    judge: str | int | None = None  # a second LLM teacher config (its name or id) that judges every answer


class BatchJobOut(Schema):
    attempt: int
    openai_batch_id: str
    status: str
    openai_status: str
    request_count: int
    completed_count: int
    failed_count: int


class CostsOut(Schema):
    input: str = Field(description="Input tokens not read from the prompt cache, at the input price.")
    cached_input: str = Field(description="Cached input tokens, at the cached-input price (else the input price).")
    output: str


def costs_out(parts) -> dict | None:
    """A ``CostParts`` as the API shows it (decimal strings, 6 places), None for none."""
    if parts is None:
        return None
    return {
        kind: str(getattr(parts, kind).quantize(Decimal("0.000001"))) for kind in ("input", "cached_input", "output")
    }


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
    cached_input_tokens: int = Field(description="Of input_tokens, those the provider read from its prompt cache.")
    output_tokens: int
    cost: str
    costs: CostsOut = Field(description="The teacher's cost by kind of token (the prices of the config snapshot).")
    cost_per_1000_pairs: str | None = Field(description="Teacher + judge cost per 1,000 labelled pairs.")
    judge: str | None
    judge_requests: int
    judge_cached: int
    judge_failed: int
    judge_input_tokens: int
    judge_cached_input_tokens: int
    judge_output_tokens: int
    judge_cost: str
    judge_costs: CostsOut | None
    thresholds: dict
    checks: dict
    routing: dict
    stuck_chunks: int = Field(description="Chunks no worker holds while the run is running (see the watchdog).")
    recoveries: int = Field(description="Stuck chunks or batch steps re-queued by the watchdog or a resume.")
    recovery_note: str = Field(description="What the latest recovery did, e.g. '2 chunks were stuck; …'.")
    trust: dict
    figures_computed_at: datetime | None = Field(
        description="When routing and trust were counted: null when counted for this read (a small running run), "
        "else kept figures (an ended run's, or a large running run's, counted again every few seconds)."
    )
    figures_stale: bool = Field(description="Answers or reviews changed them since; newer figures are on their way.")


class JudgePlanOut(Schema):
    config: str
    requests: int
    input_tokens_per_request: int
    output_tokens_per_request: int
    token_basis: str
    cached_share: float
    estimated_input_tokens: int
    estimated_output_tokens: int
    estimated_cached_input_tokens: int
    estimated_cost: str
    costs: CostsOut | None


class PlanOut(Schema):
    pairs: int
    requests: int
    samples_per_request: int = Field(
        description="K when a pair's K samples are one request (n = K, the prompt billed once), else 1."
    )
    input_tokens_per_request: int
    output_tokens_per_request: int
    token_basis: str
    estimated_input_tokens: int
    estimated_output_tokens: int
    estimated_cached_input_tokens: int = Field(description="Of estimated_input_tokens, those a prompt cache serves.")
    cached_input_basis: str
    estimated_cost: str
    teacher_estimated_cost: str
    teacher_costs: CostsOut | None
    cost_per_1000_pairs: str
    judge: JudgePlanOut | None
    price_factor: str
    cached_share: float
    is_llm: bool
    example_messages: list[dict]


class CandidateOut(Schema):
    id: int  # the candidate's id: pass the last one as ``after`` for the next page
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
    injection: list[dict]


def _run_out(run: LabelingRun) -> dict:
    figures = services.run_page(run=run)  # kept once the run has ended
    summary = figures.summary
    costs = selectors.run_costs(run=run, labelled=figures.labelled)
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
                                         "samples_cached", "input_tokens", "cached_input_tokens", "output_tokens")},
        "cost": str(run.cost),
        "costs": costs_out(costs.teacher),
        "cost_per_1000_pairs": None if costs.per_1000_pairs is None else str(costs.per_1000_pairs),
        "judge": run.judge_config.name if run.judge_config else None,
        **{f: getattr(run, f) for f in ("judge_requests", "judge_cached", "judge_failed", "judge_input_tokens",
                                         "judge_cached_input_tokens", "judge_output_tokens")},
        "judge_cost": str(run.judge_cost),
        "judge_costs": costs_out(costs.judge),
        "thresholds": run.thresholds,
        "checks": run.checks,
        "routing": {"auto_accepted": summary["auto_accepted"], "needs_review": summary["needs_review"],
                    "failed": summary["failed"], "pending": summary["pending"], "reasons": summary["reasons"]},
        "stuck_chunks": selectors.run_stuck_chunks(run=run),
        "recoveries": run.recoveries,
        "recovery_note": run.recovery_note,
        "trust": figures.trust.as_dict(),
        "figures_computed_at": figures.computed_at,
        "figures_stale": figures.stale,
    }  # fmt: skip


def _resolve(payload: RunIn):
    version = PolicyVersion.objects.filter(policy__slug=payload.policy, number=payload.version).first()
    if version is None:
        raise HttpError(404, f"No version {payload.version} of policy {payload.policy!r}.")
    config = TeacherConfig.objects.filter(name=payload.teacher).first()
    if config is None:
        raise HttpError(404, f"No teacher config {payload.teacher!r}.")
    return version, config, _judge(payload.judge)


def _judge(ref: str | int | None) -> TeacherConfig | None:
    """The judge config named by ``ref`` (its name or id); the service refuses one that is no LLM."""
    if ref is None or ref == "":
        return None
    by = {"pk": ref} if isinstance(ref, int) else {"name": ref}
    judge = TeacherConfig.objects.filter(**by).first()
    if judge is None:
        raise HttpError(404, f"No teacher config {ref!r} to judge with.")
    return judge


@router.post(
    "/runs/plan",
    response={200: PlanOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_plan_run",
)
def plan_run(request, payload: RunIn):
    """Dry run: one rendered request and the estimated tokens and cost, without calling the teacher."""
    require_role(request, ML_ENGINEER)
    version, config, judge = _resolve(payload)
    services.labeling_run_check_judge(judge=judge, mode=payload.mode)
    plan = run_plan(version=version, config=config, selection=payload.selection, mode=payload.mode, judge=judge)
    judged = plan.judge and {**asdict(plan.judge), "estimated_cost": str(plan.judge.estimated_cost),
                             "costs": costs_out(plan.judge.costs)}  # fmt: skip
    return {**plan.__dict__, "estimated_cost": str(plan.estimated_cost), "price_factor": str(plan.price_factor),
            "teacher_estimated_cost": str(plan.teacher_estimated_cost), "judge": judged,
            "teacher_costs": costs_out(plan.teacher_costs),
            "cost_per_1000_pairs": str(plan.cost_per_1000_pairs)}  # fmt: skip


@router.post(
    "/runs",
    response={200: RunOut, 201: RunOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_create_run",
    openapi_extra=IDEMPOTENT,
)
def create_run(request, payload: RunIn):
    """Start a run. Send an ``Idempotency-Key`` header to make retries safe: the same key returns the same run."""
    require_role(request, ML_ENGINEER)
    version, config, judge = _resolve(payload)
    key = request.headers.get("Idempotency-Key", "")[:200]
    existed = bool(key) and LabelingRun.objects.filter(created_by=request.auth, idempotency_key=key).exists()
    run = services.labeling_run_create(
        version=version, config=config, selection=payload.selection, thresholds=payload.thresholds,
        checks=payload.checks, chunk_size=payload.chunk_size, user=request.auth, idempotency_key=key, mode=payload.mode,
        reviewers_per_item=payload.reviewers_per_item, judge=judge,
    )  # fmt: skip
    return Status(200 if existed else 201, _run_out(selectors.run_get(pk=run.pk)))


@router.get(
    "/runs/{run_id}",
    response={200: RunOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_get_run",
)
def get_run(request, run_id: int):
    require_role(request, ML_ENGINEER)
    return _run_out(run_or_404(run_id, request.auth))


@router.post(
    "/runs/{run_id}/cancel",
    response={200: RunOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_cancel_run",
)
def cancel_run(request, run_id: int):
    require_role(request, ML_ENGINEER)
    return _run_out(services.labeling_run_cancel(run=run_or_404(run_id, request.auth), user=request.auth))


@router.post(
    "/runs/{run_id}/resume",
    response={200: RunOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_resume_run",
)
def resume_run(request, run_id: int):
    require_role(request, ML_ENGINEER)
    return _run_out(services.labeling_run_resume(run=run_or_404(run_id, request.auth), user=request.auth))


@router.get(
    "/runs/{run_id}/candidates",
    response={200: list[CandidateOut], 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_list_candidates",
)
def list_candidates(
    request, run_id: int, routing: str = "", reason: str = "", limit: int = 100, offset: int = Query(0, ge=0),
    after: int | None = Query(None, ge=0, le=2**62),
):  # fmt: skip
    """The run's candidates in id order. Page with ``after`` (the last ``id`` you got): as fast deep in a
    million-candidate run as on its first page, where ``offset`` reads and drops every row before it."""
    require_role(request, ML_ENGINEER)
    limit = max(1, min(limit, 1000))
    run = run_or_404(run_id, request.auth)
    rows = selectors.run_candidates(run=run, routing=routing, reason=reason)
    if after is not None:
        rows = rows.filter(id__gt=after)
    rows = rows[offset : offset + limit]
    return [
        {
            "id": c.pk,
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
            "injection": c.injection,
        }  # fmt: skip
        for c in rows
    ]
