"""The gold set and scores on it over the JSON API: list (paginated), mark, replace, remove; start a score of a
published version with a teacher config and read its figures.

Policy owners change the gold set and start scores; ML engineers may read the gold set and the scores (as on the
pages). The writes are the page's services (``labeling/services/gold.py``): only a human-approved item becomes
gold, a pair already gold with another label is refused (409, both labels shown) unless replaced explicitly,
removing needs a reason, and every change is in the gold set's history. Marking the same item again changes
nothing and answers the same gold label (200), so a retried mark is safe without an ``Idempotency-Key``.
"""

from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from policyhub.api_root import IDEMPOTENT, ErrorOut, TextIn, require_role
from policyhub.models import PolicyVersion
from policyhub.roles import ML_ENGINEER, POLICY_OWNER

from .. import selectors, services
from ..evaluation import evaluation_figures
from ..models import Candidate, GoldLabel, GoldLabelEvent, LabelingRun
from .common import EvaluationOut, policy_or_404, run_or_404, target_precision, teacher_or_404

router = Router(tags=["gold"])
READ_SCORES = (POLICY_OWNER, ML_ENGINEER)


class GoldOut(Schema):
    id: int
    policy: str
    pair_id: int
    member_id: str
    job_id: str
    label: str
    source_item: int | None = Field(description="The human-approved item (candidate) the label came from.")
    source_run: int | None
    created_by: str | None = Field(description="Who set the current label.")
    created_at: str


class LabelCountOut(Schema):
    label: str
    count: int


class GoldPageOut(Schema):
    policy: str
    total: int
    limit: int
    offset: int
    counts: list[LabelCountOut] = Field(description="Gold labels per label, the whole set.")
    items: list[GoldOut] = Field(description="By member id, then job id.")


class MarkOut(Schema):
    outcome: str = Field(description="``added`` (201), ``unchanged`` (already gold with this label) or ``replaced``.")
    gold: GoldOut


class ConflictOut(Schema):
    detail: str
    gold: GoldOut = Field(description="The pair's gold label now.")
    item: int
    approved_label: str = Field(description="The label the item was approved with.")


class RemoveIn(TextIn):
    reason: str = Field(description="Why the label is removed; recorded in the history.")


class EventOut(Schema):
    id: int
    action: str
    pair_id: int
    label: str = Field(description="The label added, or the one replaced or removed.")
    new_label: str
    source_item: int | None
    user: str | None
    reason: str
    created_at: str


class ScoreIn(TextIn):
    version: int = Field(description="A published version of the policy.")
    teacher: str | int = Field(description="A teacher config's name or id.")


class ScoreRunOut(Schema):
    id: int
    purpose: str
    status: str
    version: int
    teacher: str
    pairs_total: int
    samples_done: int
    samples_failed: int
    error: str
    created_at: str


class ScoreOut(Schema):
    run: ScoreRunOut
    gold_total: int = Field(description="Pairs in the gold set now.")
    in_run: int = Field(description="Gold pairs the run covers.")
    labeled: int
    failed: int
    finished: bool
    evaluation: EvaluationOut


class ScoreSummaryOut(Schema):
    run: ScoreRunOut
    items: int = Field(description="The run's labeled items on gold pairs.")
    correct: int
    accuracy: float | None


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _gold_out(gold: GoldLabel) -> dict:
    source = gold.source_candidate
    return {
        "id": gold.pk,
        "policy": gold.policy.slug,
        "pair_id": gold.pair_id,
        "member_id": gold.pair.member.external_id,
        "job_id": gold.pair.job.external_id,
        "label": gold.label,
        "source_item": gold.source_candidate_id,
        "source_run": source.run_id if source else None,
        "created_by": gold.created_by.get_username() if gold.created_by else None,
        "created_at": gold.created_at.isoformat(),
    }


def _event_out(event: GoldLabelEvent) -> dict:
    return {
        "id": event.pk,
        "action": event.action,
        "pair_id": event.pair_id,
        "label": event.label,
        "new_label": event.new_label,
        "source_item": event.source_candidate_id,
        "user": event.user.get_username() if event.user else None,
        "reason": event.reason,
        "created_at": event.created_at.isoformat(),
    }


def _run_out(run: LabelingRun) -> dict:
    return {
        "id": run.pk,
        "purpose": run.purpose,
        "status": run.status,
        "version": run.policy_version.number,
        "teacher": run.teacher_config.name,
        "pairs_total": run.pairs_total,
        "samples_done": run.samples_done,
        "samples_failed": run.samples_failed,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
    }


# --- the gold set ------------------------------------------------------------------------------------------------
@router.get("/policies/{slug}/gold", response={200: GoldPageOut, 403: ErrorOut, 404: ErrorOut})
def list_gold(request, slug: str, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000_000)):
    """The policy's gold set, a page at a time (``limit`` ≤ 500, ``offset``), with the counts per label."""
    require_role(request, *READ_SCORES)
    policy = policy_or_404(request, slug)
    gold = selectors.gold_list(policy=policy)
    return {
        "policy": policy.slug,
        "total": gold.count(),
        "limit": limit,
        "offset": offset,
        "counts": [{"label": label, "count": n} for label, n in selectors.gold_counts(policy=policy)],
        "items": [_gold_out(g) for g in gold.select_related("policy")[offset : offset + limit]],
    }


@router.get("/policies/{slug}/gold/events", response={200: list[EventOut], 403: ErrorOut, 404: ErrorOut})
def list_gold_events(request, slug: str):
    """The gold set's latest 50 additions, replacements and removals (newest first)."""
    require_role(request, *READ_SCORES)
    return [_event_out(e) for e in selectors.gold_events(policy=policy_or_404(request, slug))]


def _mark(request, candidate_id: int, *, replace: bool):
    require_role(request, POLICY_OWNER)
    candidate = Candidate.objects.filter(pk=candidate_id).only("run_id").first()
    if candidate is None:
        raise HttpError(404, f"No item #{candidate_id}.")
    run_or_404(candidate.run_id, request.auth, missing=f"No item #{candidate_id}.")
    try:
        result = services.gold_mark(user=request.auth, candidate_id=candidate_id, replace=replace)
    except services.GoldConflict as conflict:
        gold = selectors.gold_list(policy=conflict.gold.policy).select_related("policy").get(pk=conflict.gold.pk)
        return Status(409, {"detail": " ".join(conflict.messages), "gold": _gold_out(gold), "item": candidate_id,
                            "approved_label": conflict.candidate.approved_label})  # fmt: skip
    gold = GoldLabel.objects.select_related("policy", "pair__member", "pair__job", "created_by", "source_candidate")
    body = {"outcome": result.outcome, "gold": _gold_out(gold.get(pk=result.gold.pk))}
    return Status(201 if result.outcome == "added" else 200, body)


MARK_RESPONSES = {200: MarkOut, 201: MarkOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ConflictOut}


@router.post("/gold/items/{candidate_id}/mark", response=MARK_RESPONSES)
def mark_gold(request, candidate_id: int):
    """Make a human-approved item's label the gold label of its pair (201). Already gold with the same label: 200,
    nothing changes. Gold with a different label: 409 with both labels; replace it explicitly (``/replace``)."""
    return _mark(request, candidate_id, replace=False)


@router.post("/gold/items/{candidate_id}/replace", response=MARK_RESPONSES)
def replace_gold(request, candidate_id: int):
    """Make the item's approved label the pair's gold label even if it is gold with another label (``replaced``;
    the old label is kept in the history)."""
    return _mark(request, candidate_id, replace=True)


class MarkRunOut(Schema):
    added: int
    unchanged: int = Field(description="Already gold with the same label: left alone.")
    conflicts: list[ConflictOut] = Field(description="Gold with a different label: refused, never changed.")
    waiting: int = Field(description="Items still waiting for review or adjudication (skipped).")
    summary: str


@router.post("/runs/{run_id}/gold/mark-all", response={200: MarkRunOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut})
def mark_run_gold(request, run_id: int):
    """Mark every human-approved item of a labeling run as gold (idempotent: a second call adds nothing)."""
    require_role(request, POLICY_OWNER)
    run = run_or_404(
        run_id, request.auth, purposes=[LabelingRun.Purpose.LABELING], missing=f"No labeling run #{run_id}."
    )
    result = services.gold_mark_run(user=request.auth, run=run)
    golds = {g.pk: g for g in selectors.gold_list(policy=run.policy_version.policy).select_related("policy")}
    conflicts = [
        {"detail": f"Item #{candidate.pk}: approved as {candidate.approved_label}, gold is {gold.label}.",
         "gold": _gold_out(golds[gold.pk]), "item": candidate.pk, "approved_label": candidate.approved_label}
        for candidate, gold in result.conflicts
    ]  # fmt: skip
    return {"added": result.added, "unchanged": result.unchanged, "conflicts": conflicts, "waiting": result.waiting,
            "summary": result.summary}  # fmt: skip


@router.post("/policies/{slug}/gold/{gold_id}/remove", response={200: EventOut, **{
    c: ErrorOut for c in (400, 403, 404)}})  # fmt: skip
def remove_gold(request, slug: str, gold_id: int, payload: RemoveIn):
    """Take a pair out of the gold set; ``reason`` is required and recorded with who and when."""
    require_role(request, POLICY_OWNER)
    policy = policy_or_404(request, slug)
    if not policy.gold_labels.filter(pk=gold_id).exists():
        raise HttpError(404, f"{policy.slug} has no gold label #{gold_id} (removed already?).")
    event = services.gold_remove(user=request.auth, gold_id=gold_id, reason=payload.reason)
    return _event_out(GoldLabelEvent.objects.select_related("user").get(pk=event.pk))


# --- scores on the gold set ----------------------------------------------------------------------------------------
@router.post(
    "/policies/{slug}/gold/scores",
    response={200: ScoreOut, 201: ScoreOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    openapi_extra=IDEMPOTENT,
)
def start_gold_score(request, slug: str, payload: ScoreIn):
    """Score a published version × teacher config on the gold set: a run over the gold pairs (201; poll
    ``GET …/gold/scores/{run_id}``). An empty gold set or an unusable config (e.g. its API key is not set on the
    workers) is a 400 and starts nothing. The same ``Idempotency-Key`` returns the same score (200)."""
    require_role(request, POLICY_OWNER)
    policy = policy_or_404(request, slug)
    version = PolicyVersion.objects.filter(policy=policy, number=payload.version).first()
    if version is None:
        raise HttpError(404, f"{policy.slug} has no version {payload.version}.")
    config = teacher_or_404(payload.teacher)
    key = request.headers.get("Idempotency-Key", "")[:200]
    existed = selectors.run_for_key(user=request.auth, key=key) is not None
    run = services.gold_score_start(user=request.auth, version=version, config=config, idempotency_key=key)
    return Status(200 if existed else 201, _score_out(selectors.run_get(pk=run.pk), target=0.95))


def _score_out(run: LabelingRun, target: float) -> dict:
    score = selectors.run_gold_score(run=run, target_precision=target)
    return {
        "run": _run_out(run),
        "gold_total": score.gold_total,
        "in_run": score.in_run,
        "labeled": score.labeled,
        "failed": score.failed,
        "finished": not run.is_active,
        "evaluation": evaluation_figures(score.evaluation),
    }


@router.get("/policies/{slug}/gold/scores", response={200: list[ScoreSummaryOut], 403: ErrorOut, 404: ErrorOut})
def list_gold_scores(request, slug: str):
    """Every labeling or score run of the policy with labeled items on gold pairs, and its accuracy there."""
    require_role(request, *READ_SCORES)
    return [
        {"run": _run_out(row.run), "items": row.n, "correct": row.correct, "accuracy": row.accuracy}
        for row in selectors.runs_on_gold(policy=policy_or_404(request, slug))
    ]


@router.get(
    "/policies/{slug}/gold/scores/{run_id}",
    response={200: ScoreOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
)
def get_gold_score(request, slug: str, run_id: int, precision: str | None = None):
    """One run's labels against the current gold set (a score run, or any labeling run of the policy): accuracy,
    confusion, per-rule accuracy, calibration and the auto-accept threshold for ``precision`` (0.5–1, 0.95)."""
    require_role(request, *READ_SCORES)
    target = target_precision(precision)
    policy = policy_or_404(request, slug)
    run = run_or_404(run_id, request.auth, policy=policy, purposes=selectors.gold.SCORED_PURPOSES,
                     missing=f"{policy.slug} has no run #{run_id} to score.")  # fmt: skip
    return _score_out(run, target)
