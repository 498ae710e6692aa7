"""Quality gates over the JSON API: a policy's thresholds (read by anyone who may read the policy, set by policy
owners), the gate check of its draft (policy owners: drafts are theirs) and a published version's gate record
(anyone who may read the version). Publishing itself is ``POST /api/policies/{slug}/draft/publish``
(``override_reason`` overrides failing gates)."""

from django.core.exceptions import ValidationError
from django.http import Http404
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from policyhub import roles
from policyhub import selectors as policy_selectors
from policyhub.api_root import ErrorOut, TextIn, require_role

from .. import services
from ..models import GATE_THRESHOLD_FIELDS, GateRecord, QualityGates
from ..selectors.gates import draft_gate_check, policy_gates, version_gate_record

router = Router(tags=["quality gates"])
Fraction = float | None


class GatesIn(TextIn):
    """Any subset of the settings; a threshold is a fraction from 0 to 1, ``null`` turns that gate off. Settings
    not sent keep their value (a policy's first settings start from the defaults)."""

    min_gold_accuracy: Fraction = Field(None, ge=0, le=1)
    max_rule_accuracy_drop: Fraction = Field(None, ge=0, le=1)
    max_asr_injection: Fraction = Field(None, ge=0, le=1)
    max_asr_protected_attribute: Fraction = Field(None, ge=0, le=1)
    max_asr_irrelevant_noise: Fraction = Field(None, ge=0, le=1)
    max_asr_hallucination_bait: Fraction = Field(None, ge=0, le=1)
    max_asr_custom: Fraction = Field(None, ge=0, le=1)
    max_flip_rate: Fraction = Field(None, ge=0, le=1)
    max_hallucination_rate: Fraction = Field(None, ge=0, le=1)
    require_red_team_run: bool = False


class GatesOut(Schema):
    policy: str
    configured: bool
    min_gold_accuracy: Fraction
    max_rule_accuracy_drop: Fraction
    max_asr_injection: Fraction
    max_asr_protected_attribute: Fraction
    max_asr_irrelevant_noise: Fraction
    max_asr_hallucination_bait: Fraction
    max_asr_custom: Fraction
    max_flip_rate: Fraction
    max_hallucination_rate: Fraction
    require_red_team_run: bool
    updated_by: str | None
    updated_at: str | None


class GateResultOut(Schema):
    key: str
    name: str
    figure: float | None
    threshold: float
    direction: str
    status: str
    blocking: bool
    detail: str
    red_team_run: int | None = Field(
        None, description="A red-team gate not measured because of this red-team run (failed, cancelled, running)."
    )


class GateCheckOut(Schema):
    policy: str
    draft: int
    revision: int
    content_hash: str
    configured: bool
    passed: bool
    needs_preview: bool
    preview_problem: str
    preview: int | None
    thresholds: dict | None
    figures: dict
    results: list[GateResultOut]


class GateRecordOut(Schema):
    policy: str
    version: int
    gates_configured: bool
    passed: bool
    preview: int | None
    thresholds: dict
    figures: dict
    results: list[GateResultOut]
    published_by: str
    recorded_at: str
    overridden: bool
    overridden_by: str | None
    override_reason: str
    overridden_at: str | None


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _policy(request, slug: str):
    try:
        return policy_selectors.policy_get(user=request.auth, slug=slug)
    except Http404 as exc:
        raise HttpError(404, str(exc)) from None


def _gates_out(policy, gates: QualityGates | None) -> dict:
    values = (
        {name: getattr(gates, name) for name in (*GATE_THRESHOLD_FIELDS, "require_red_team_run")}
        if gates
        else {**dict.fromkeys(GATE_THRESHOLD_FIELDS), "require_red_team_run": False}
    )
    return {
        "policy": policy.slug,
        "configured": bool(gates and gates.configured),
        **values,
        "updated_by": gates.updated_by.get_username() if gates and gates.updated_by else None,
        "updated_at": _iso(gates.updated_at) if gates else None,
    }


def gate_check_out(check) -> dict:
    """A gate check as the API shows it (also the ``gates`` of a refused publish)."""
    return {"policy": check.draft.policy.slug, **check.as_dict()}


def _record_out(record: GateRecord) -> dict:
    return {
        "policy": record.version.policy.slug,
        "version": record.version.number,
        "gates_configured": record.gates_configured,
        "passed": record.passed,
        "preview": record.preview_id,
        "thresholds": record.thresholds,
        "figures": record.figures,
        "results": record.results,
        "published_by": record.published_by.get_username(),
        "recorded_at": _iso(record.created_at),
        "overridden": record.overridden,
        "overridden_by": record.overridden_by.get_username() if record.overridden_by else None,
        "override_reason": record.override_reason,
        "overridden_at": _iso(record.overridden_at),
    }


ERRORS = {400: dict, 403: ErrorOut, 404: ErrorOut}


@router.get("/policies/{slug}/gates", response={200: GatesOut, **ERRORS})
def get_gates(request, slug: str):
    """The policy's quality-gate thresholds (all null and ``configured`` false: no gates)."""
    require_role(request, *roles.READERS)
    policy = _policy(request, slug)
    return _gates_out(policy, policy_gates(policy=policy))


@router.put("/policies/{slug}/gates", response={200: GatesOut, **ERRORS})
def put_gates(request, slug: str, payload: GatesIn):
    """Set the policy's quality gates (policy owners)."""
    require_role(request, roles.POLICY_OWNER)
    policy = _policy(request, slug)
    try:
        gates = services.quality_gates_update(policy=policy, user=request.auth, **payload.dict(exclude_unset=True))
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        return Status(400, {"detail": "Invalid quality gates.", "errors": errors})
    return _gates_out(policy, gates)


@router.get("/policies/{slug}/draft/gates", response={200: GateCheckOut, **ERRORS})
def get_draft_gates(request, slug: str):
    """The gate check of the draft as it is now: its latest fresh preview's figures, the red-team figures and each
    gate's result; ``needs_preview`` when the draft must be previewed (again) first."""
    require_role(request, roles.POLICY_OWNER)
    policy = _policy(request, slug)
    draft = policy_selectors.policy_draft(policy=policy)
    if draft is None:
        raise HttpError(404, f"{slug} has no draft.")
    return gate_check_out(draft_gate_check(draft=draft))


@router.get("/policies/{slug}/versions/{number}/gates", response={200: GateRecordOut, **ERRORS})
def get_version_gates(request, slug: str, number: int):
    """The gate record of a published version: what the gates said when it was published, and any override."""
    require_role(request, *roles.READERS)
    policy = _policy(request, slug)
    try:
        version = policy_selectors.version_get(user=request.auth, policy=policy, number=number)
    except Http404 as exc:
        raise HttpError(404, str(exc)) from None
    record = None if version.is_draft else version_gate_record(version=version)
    if record is None:
        state = "is a draft" if version.is_draft else "was published before quality gates were recorded"
        raise HttpError(404, f"v{number} of {slug} has no gate record: it {state}.")
    return _record_out(record)
