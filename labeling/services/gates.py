"""Writes for the quality gates: a policy's thresholds (its owners set them) and the gate record a version gets
when it is published.

``policyhub.services.policy_version_publish`` calls ``publish_gate_check`` inside its transaction, with the
draft locked: the gates are checked on the draft's latest fresh preview, a failing gate refuses publishing
(``GatesFailed``) unless a policy owner gives a written reason to override it, and the record is written once, next
to the published version. The same check is ``labeling.selectors.gates.gates_for_draft`` for the command line.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from policyhub import roles
from policyhub.models import Policy, PolicyVersion

from ..models import GATE_THRESHOLD_FIELDS, GateRecord, QualityGates
from ..selectors.gates import GateCheck, draft_gate_check, gates_for_draft

__all__ = [
    "GateError",
    "GatesFailed",
    "OverrideReasonMissing",
    "PreviewNeeded",
    "publish_gate_check",
    "gates_for_draft",
    "quality_gates_update",
]

OWNERS_ONLY = "Only policy owners can set quality gates or override them."


class GateError(ValidationError):
    """Publishing was refused by the quality gates; ``check`` is the gate check that refused it."""

    def __init__(self, message: str, check: GateCheck):
        self.check = check
        super().__init__(message)


class PreviewNeeded(GateError):
    """The gates read the gold preview, and the draft has no finished preview of its current content."""


class GatesFailed(GateError):
    """A gate blocks and no override was given."""


class OverrideReasonMissing(GateError):
    """An override was asked for without a reason."""


def quality_gates_update(*, policy: Policy, user, **values) -> QualityGates:
    """Set the policy's thresholds (each a fraction in [0, 1] or None: off) and whether a red-team run is
    required. Fields not given keep their value (a new row starts from the defaults). Bad values raise
    ``ValidationError`` by field and change nothing."""
    roles.require_role(user, roles.POLICY_OWNER, message=OWNERS_ONLY)
    allowed = {*GATE_THRESHOLD_FIELDS, "require_red_team_run"}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValidationError({name: ["Not a quality gate setting."] for name in unknown})
    with transaction.atomic():
        gates = QualityGates.objects.select_for_update().filter(policy=policy).first() or QualityGates(policy=policy)
        for name, value in values.items():
            setattr(gates, name, value)
        gates.updated_by = user
        gates.full_clean()
        gates.save()
    return gates


def _blocked_message(draft: PolicyVersion, check: GateCheck) -> str:
    failing = check.blocking
    return (
        f"Cannot publish v{draft.number}: {len(failing)} quality gate{'s' if len(failing) != 1 else ''} "
        f"{'blocks' if len(failing) == 1 else 'block'} it — {check.summary}. A policy owner may override with a "
        "written reason; it is kept on the version."
    )


def publish_gate_check(*, draft: PolicyVersion, user, override_reason: str | None = None) -> GateCheck:
    """Check the gates of ``draft`` (locked by the caller, not yet published) and return the check; raise
    ``PreviewNeeded``, ``GatesFailed`` or ``OverrideReasonMissing`` when publishing must not go ahead.
    ``override_reason`` (None: no override) is needed only when a gate blocks."""
    roles.require_role(user, roles.POLICY_OWNER, message=OWNERS_ONLY)
    check = draft_gate_check(draft=draft)
    if check.needs_preview:
        raise PreviewNeeded(f"Cannot publish v{draft.number} yet: {check.preview_problem}", check)
    if check.blocking:
        if override_reason is None:
            raise GatesFailed(_blocked_message(draft, check), check)
        if not override_reason.strip():
            raise OverrideReasonMissing(
                "Write why you publish despite the failing gates: an override needs a reason, and it is kept on "
                "the version for good.",
                check,
            )
    return check


def gate_record_create(*, version: PolicyVersion, check: GateCheck, user, override_reason: str | None) -> GateRecord:
    """The published version's gate record (called once, in the publishing transaction)."""
    overridden = bool(check.blocking)
    record = GateRecord(
        version=version,
        preview=check.preview,
        gates_configured=check.configured,
        thresholds=check.thresholds or {},
        figures=check.figures,
        results=[r.as_dict() for r in check.results],
        passed=not overridden,
        published_by=user,
        overridden_by=user if overridden else None,
        override_reason=override_reason.strip() if overridden else "",
        overridden_at=version.published_at if overridden else None,  # the override is the act of publishing
        created_at=version.published_at or timezone.now(),
    )
    record.full_clean()
    record.save()
    return record
