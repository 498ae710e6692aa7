"""Policy feedback over the JSON API: flag an item (annotators, policy owners; ``Idempotency-Key`` makes a retry
safe), list a policy's feedback (policy owners and ML engineers see all of it, annotators their own), resolve or
dismiss it, and reopen a resolved or dismissed one saying why (policy owners; the outcome it had stays in its
``history``)."""

from django.http import Http404
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from policyhub import selectors as policy_selectors
from policyhub.api_root import IDEMPOTENT, ErrorOut, TextIn, require_role
from policyhub.roles import ANNOTATOR, ML_ENGINEER, POLICY_OWNER

from ..models import FeedbackKind, FeedbackStatus, PolicyFeedback
from ..selectors import feedback as feedback_selectors
from ..services import feedback as feedback_services

router = Router(tags=["feedback"])


class FeedbackIn(TextIn):
    candidate_id: int = Field(description="The review item (candidate) flagged.")
    kind: FeedbackKind
    rule_ids: list[str] = Field(default=[], max_length=100, description="Rule IDs of the item's policy version.")
    note: str = Field(max_length=20_000, description="What the problem is (at most 5,000 characters once trimmed).")


class ResolveIn(TextIn):
    version: int = Field(description="The number of the later version (draft or published) that resolves it.")
    note: str = Field(default="", max_length=20_000, description="What changed (optional).")


class DismissIn(TextIn):
    reason: str = Field(max_length=20_000, description="Why it is dismissed (required, recorded).")


class ReopenIn(TextIn):
    reason: str = Field(max_length=20_000, description="Why it is open again (required, recorded in its history).")


class ReopeningOut(Schema):
    reopened_by: str
    reopened_at: str
    reason: str
    previous_status: str = Field(description="resolved or dismissed: what it was before it was reopened.")
    previous_version: int | None = Field(description="Resolved: the version it was resolved in.")
    previous_note: str = Field(description="The resolution note or the dismiss reason it had.")
    previous_closed_by: str | None
    previous_closed_at: str


class FeedbackOut(Schema):
    id: int
    policy: str
    version: int
    candidate_id: int | None
    run_id: int | None
    member_id: str
    job_id: str
    kind: str
    rule_ids: list[str]
    note: str
    status: str
    resolved_in_version: int | None
    resolution_note: str
    dismiss_reason: str
    created_by: str
    created_at: str
    closed_by: str | None
    closed_at: str | None
    history: list[ReopeningOut] = Field(description="Each time it was reopened, oldest first.")


class FeedbackFilters(Schema):
    status: FeedbackStatus | None = None
    resolved_in: int | None = Field(default=None, description="Only feedback resolved in this version number.")
    rule: str = Field(default="", max_length=20, description="Only feedback citing this rule ID, e.g. R2.")
    kind: FeedbackKind | None = None


def _out(feedback: PolicyFeedback) -> dict:
    return {
        "id": feedback.pk,
        "policy": feedback.policy.slug,
        "version": feedback.version.number,
        "candidate_id": feedback.candidate_id,
        "run_id": feedback.candidate.run_id if feedback.candidate_id else None,
        "member_id": feedback.pair.member.external_id,
        "job_id": feedback.pair.job.external_id,
        "kind": feedback.kind,
        "rule_ids": list(feedback.rule_ids),
        "note": feedback.note,
        "status": feedback.status,
        "resolved_in_version": feedback.resolved_in_version.number if feedback.resolved_in_version_id else None,
        "resolution_note": feedback.resolution_note,
        "dismiss_reason": feedback.dismiss_reason,
        "created_by": feedback.created_by.get_username(),
        "created_at": feedback.created_at.isoformat(),
        "closed_by": feedback.closed_by.get_username() if feedback.closed_by_id else None,
        "closed_at": feedback.closed_at.isoformat() if feedback.closed_at else None,
        "history": [
            {
                "reopened_by": row.reopened_by.get_username(),
                "reopened_at": row.reopened_at.isoformat(),
                "reason": row.reason,
                "previous_status": row.previous_status,
                "previous_version": row.previous_version.number if row.previous_version_id else None,
                "previous_note": row.previous_note,
                "previous_closed_by": row.previous_closed_by.get_username() if row.previous_closed_by_id else None,
                "previous_closed_at": row.previous_closed_at.isoformat(),
            }
            for row in feedback.reopenings.all()
        ],
    }


def _get(request, feedback_id: int) -> PolicyFeedback:
    try:
        return feedback_selectors.feedback_get(user=request.auth, pk=feedback_id)
    except PolicyFeedback.DoesNotExist:
        raise HttpError(404, f"No feedback #{feedback_id}.") from None


@router.post(
    "/feedback",
    response={200: FeedbackOut, 201: FeedbackOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_create_feedback",
    openapi_extra=IDEMPOTENT,
)
def create_feedback(request, payload: FeedbackIn):
    """Flag a review item as a policy problem. An annotator may flag an item they hold, reviewed or skipped; a
    policy owner any item of a labeling run or a gold score under a published or retired version. Unknown rules,
    an unclear rule without its ID, a conflict without two rules or an empty note are a 400 whose ``detail`` says
    which. The same ``Idempotency-Key`` returns the first feedback (200) instead of a second one (201)."""
    require_role(request, ANNOTATOR, POLICY_OWNER)
    key = request.headers.get("Idempotency-Key", "")[:200]
    try:
        feedback, created = feedback_services.feedback_create(
            user=request.auth, candidate_id=payload.candidate_id, kind=payload.kind, rule_ids=payload.rule_ids,
            note=payload.note, idempotency_key=key,
        )  # fmt: skip
    except feedback_services.FeedbackNotFound as missing:
        raise HttpError(404, str(missing)) from None
    return Status(201 if created else 200, _out(_get(request, feedback.pk)))


@router.get(
    "/policies/{slug}/feedback",
    response={200: list[FeedbackOut], 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_list_feedback",
)
def list_feedback(request, slug: str, filters: Query[FeedbackFilters]):
    """The policy's feedback, newest first (at most 500): all of it for policy owners and ML engineers, their own
    for annotators. Filter by ``status``, ``resolved_in`` (a version number), ``rule`` and ``kind``."""
    require_role(request, POLICY_OWNER, ML_ENGINEER, ANNOTATOR)
    try:
        policy = policy_selectors.policy_get(user=request.auth, slug=slug)
    except Http404 as missing:
        raise HttpError(404, str(missing)) from None
    rows = feedback_selectors.feedback_list(
        user=request.auth, policy=policy, status=filters.status or "", resolved_in=filters.resolved_in,
        rule=filters.rule.strip().upper(), kind=filters.kind or "",
    )  # fmt: skip
    return [_out(feedback) for feedback in rows[:500]]


@router.get(
    "/feedback/{feedback_id}",
    response={200: FeedbackOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_get_feedback",
)
def get_feedback(request, feedback_id: int):
    require_role(request, POLICY_OWNER, ML_ENGINEER, ANNOTATOR)
    return _out(_get(request, feedback_id))


@router.post(
    "/feedback/{feedback_id}/resolve",
    response={200: FeedbackOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_resolve_feedback",
)
def resolve_feedback(request, feedback_id: int, payload: ResolveIn):
    """Resolve open feedback in a later version of its policy (the draft that fixes it, or a published one)."""
    require_role(request, POLICY_OWNER)
    _get(request, feedback_id)
    feedback_services.feedback_resolve(
        user=request.auth, feedback_id=feedback_id, version_number=payload.version, note=payload.note
    )
    return _out(_get(request, feedback_id))


@router.post(
    "/feedback/{feedback_id}/dismiss",
    response={200: FeedbackOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_dismiss_feedback",
)
def dismiss_feedback(request, feedback_id: int, payload: DismissIn):
    """Dismiss open feedback, saying why (required; shown to whoever flagged it)."""
    require_role(request, POLICY_OWNER)
    _get(request, feedback_id)
    feedback_services.feedback_dismiss(user=request.auth, feedback_id=feedback_id, reason=payload.reason)
    return _out(_get(request, feedback_id))


@router.post(
    "/feedback/{feedback_id}/reopen",
    response={200: FeedbackOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_reopen_feedback",
)
def reopen_feedback(request, feedback_id: int, payload: ReopenIn):
    """Reopen resolved or dismissed feedback, saying why (required). The outcome it had goes to its ``history``
    with who reopened it, when and why; reopening open feedback is a 400 that says so."""
    require_role(request, POLICY_OWNER)
    _get(request, feedback_id)
    feedback_services.feedback_reopen(user=request.auth, feedback_id=feedback_id, reason=payload.reason)
    return _out(_get(request, feedback_id))
