"""Policy feedback: an annotator flags a review item as a problem of the policy (a rule is unclear, rules conflict,
the case is not covered, no label fits), naming the rules of the item's policy version and saying why in a note;
a policy owner resolves it in a later version of the policy or dismisses it with the reason why.

Who may flag an item: an annotator who holds it, reviewed it or skipped it (the items they were shown); a policy
owner any item of a labeling run or of a score on the gold set (the published side of a draft preview's flips)
under a version that is not a draft: from the run page, the adjudication page, the gold set or a preview's flips.
Only policy owners resolve and dismiss, and reopen a resolved or dismissed flag (saying why; the outcome it had is
kept in its history, ``PolicyFeedbackReopening``). Every refusal is a ``FeedbackError`` (a
``ValidationError``) whose message says what to change; nothing is written then.
"""

import re
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from policyhub import roles
from policyhub.models import PolicyVersion

from ..models import Candidate, LabelingRun, PolicyFeedback, PolicyFeedbackReopening, Review, ReviewSkip, ReviewState


class FeedbackError(ValidationError):
    """Feedback that cannot be recorded or changed as asked; the message says why. Nothing was changed."""


class FeedbackNotFound(Exception):
    """No such item or feedback among those the caller may see (a 404)."""


_RULE_SPLIT = re.compile(r"[\s,;]+")


def parse_rule_ids(raw: str | list | tuple | None) -> list[str]:
    """Rule IDs from a form field ("R2, r5 R7") or a list: upper-cased, duplicates dropped, order kept."""
    items = _RULE_SPLIT.split(raw) if isinstance(raw, str) else list(raw or [])
    seen: list[str] = []
    for item in items:
        rule = str(item).strip().upper()
        if rule and rule not in seen:
            seen.append(rule)
    return seen


def _check_content(*, version: PolicyVersion, kind: str, rule_ids: list[str], note: str) -> None:
    if kind not in PolicyFeedback.Kind.values:
        raise FeedbackError(
            f"{kind!r} is not a kind of feedback; choose one of {', '.join(PolicyFeedback.Kind.values)}.", code="kind"
        )
    known = version.rule_ids
    unknown = [rule for rule in rule_ids if rule not in known]
    if unknown:
        has = f"its rules are {', '.join(known)}" if known else "it has no rules"
        named = ", ".join(rule[:20] for rule in unknown[:5]) + (", …" if len(unknown) > 5 else "")
        raise FeedbackError(
            f"{named} {'is not a rule' if len(unknown) == 1 else 'are not rules'} of "
            f"{version.policy.slug} v{version.number}, the version this item was labelled under ({has}).",
            code="unknown_rule",
        )
    if kind == PolicyFeedback.Kind.UNCLEAR_RULE and not rule_ids:
        raise FeedbackError("Name the rule that is unclear (its ID, e.g. R2).", code="rule_needed")
    if kind == PolicyFeedback.Kind.RULES_CONFLICT and len(rule_ids) < 2:
        raise FeedbackError("Name at least two rules that conflict (e.g. R2, R5).", code="rules_needed")
    if not note:
        raise FeedbackError("Say what the problem is in the note: the policy owner reads it.", code="note_needed")
    if len(note) > PolicyFeedback.NOTE_MAX:
        raise FeedbackError(f"The note is {len(note)} characters; at most {PolicyFeedback.NOTE_MAX}.", code="note")


#: Runs whose items a policy owner may flag: the review queue's, and a version's scores on the gold set.
OWNER_PURPOSES = (LabelingRun.Purpose.LABELING, LabelingRun.Purpose.GOLD_SCORE)


def feedback_candidate(*, user, candidate_id: int) -> Candidate:
    """The item ``user`` may flag: for an annotator one of a labeling run they hold, reviewed or skipped; for a
    policy owner any item of a labeling run or a gold score under a published or retired version (a draft's
    items are not flagged: the owner edits the draft). Anything else is ``FeedbackNotFound``."""
    roles.require_role(user, roles.ANNOTATOR, roles.POLICY_OWNER)
    candidate = (
        Candidate.objects.select_related("run__policy_version__policy")
        .filter(pk=candidate_id, run__purpose__in=OWNER_PURPOSES)
        .exclude(run__policy_version__status=PolicyVersion.Status.DRAFT)
        .first()
    )
    if candidate is None:
        raise FeedbackNotFound(f"There is no item #{candidate_id}.")
    if roles.has_role(user, roles.POLICY_OWNER):
        return candidate
    if candidate.run.purpose != LabelingRun.Purpose.LABELING:
        raise FeedbackNotFound(f"There is no item #{candidate_id} among the items you hold or reviewed.")
    seen = (
        candidate.claimed_by_id == user.pk
        or Review.objects.filter(candidate=candidate, reviewer=user).exists()
        or ReviewSkip.objects.filter(candidate=candidate, reviewer=user).exists()
    )
    if not seen:
        raise FeedbackNotFound(f"There is no item #{candidate_id} among the items you hold or reviewed.")
    return candidate


def feedback_create(
    *, user, candidate_id: int, kind: str, rule_ids: list[str] | str, note: str, idempotency_key: str = ""
) -> tuple[PolicyFeedback, bool]:
    """Flag an item as a policy problem. Returns (feedback, created): the same ``idempotency_key`` from the same
    user returns the first feedback instead of a second one. The item's review is untouched; if the user holds the
    item, their claim is renewed for a full lease (a long note must not cost them the item)."""
    roles.require_role(user, roles.ANNOTATOR, roles.POLICY_OWNER)
    key = (idempotency_key or "")[:200]
    if key and (existing := PolicyFeedback.objects.filter(created_by=user, idempotency_key=key).first()):
        return existing, False
    candidate = feedback_candidate(user=user, candidate_id=candidate_id)
    version = candidate.run.policy_version
    rules, text = parse_rule_ids(rule_ids), (note or "").strip()
    _check_content(version=version, kind=kind, rule_ids=rules, note=text)
    feedback = PolicyFeedback(
        policy=version.policy, version=version, candidate=candidate, pair_id=candidate.pair_id, kind=kind,
        rule_ids=rules, note=text, created_by=user, idempotency_key=key,
    )  # fmt: skip
    feedback.full_clean(exclude=["policy", "version", "candidate", "pair", "created_by"])
    try:
        with transaction.atomic():
            feedback.save()
            # writing the flag was work on the item: the claim of whoever holds it lasts a full lease from now
            Candidate.objects.filter(pk=candidate.pk, claimed_by=user, review_state=ReviewState.PENDING).update(
                claim_expires_at=timezone.now() + timedelta(seconds=settings.REVIEW_LEASE_SECONDS)
            )
    except IntegrityError:
        if key:  # the same key raced in from a second request
            return PolicyFeedback.objects.get(created_by=user, idempotency_key=key), False
        raise
    return feedback, True


def _locked(feedback_id: int) -> PolicyFeedback:
    feedback = (
        PolicyFeedback.objects.select_for_update(of=("self",))
        .select_related("policy", "version", "closed_by")
        .filter(pk=feedback_id)
        .first()
    )
    if feedback is None:
        raise FeedbackNotFound(f"There is no feedback #{feedback_id}.")
    return feedback


def _locked_open(feedback_id: int) -> PolicyFeedback:
    feedback = _locked(feedback_id)
    if feedback.status != PolicyFeedback.Status.OPEN:
        who = feedback.closed_by.get_username() if feedback.closed_by else "someone"
        raise FeedbackError(
            f"Feedback #{feedback.pk} was already {feedback.status} by {who} at "
            f"{timezone.localtime(feedback.closed_at):%Y-%m-%d %H:%M}: nothing changed.",
            code="not_open",
        )
    return feedback


def feedback_resolve(*, user, feedback_id: int, version_number: int, note: str = "") -> PolicyFeedback:
    """A policy owner marks the feedback resolved in version ``version_number`` of its policy: a version after the
    one the item was labelled under (the draft that fixes it, or a published one)."""
    roles.require_role(user, roles.POLICY_OWNER)
    with transaction.atomic():
        feedback = _locked_open(feedback_id)
        target = PolicyVersion.objects.filter(policy=feedback.policy, number=version_number).first()
        if target is None:
            raise FeedbackError(f"{feedback.policy.slug} has no version {version_number}.", code="no_version")
        if target.number <= feedback.version.number:
            raise FeedbackError(
                f"The flag is about v{feedback.version.number}, which never changes: resolve it in a later version "
                f"(v{feedback.version.number + 1} or after).",
                code="version_not_later",
            )
        text = (note or "").strip()
        if len(text) > PolicyFeedback.NOTE_MAX:
            raise FeedbackError(f"The note is {len(text)} characters; at most {PolicyFeedback.NOTE_MAX}.")
        feedback.status, feedback.resolved_in_version, feedback.resolution_note = "resolved", target, text
        feedback.closed_by, feedback.closed_at = user, timezone.now()
        feedback.save()
    return feedback


def feedback_dismiss(*, user, feedback_id: int, reason: str) -> PolicyFeedback:
    """A policy owner dismisses the feedback, saying why (recorded and shown to the person who flagged it)."""
    roles.require_role(user, roles.POLICY_OWNER)
    text = (reason or "").strip()
    if not text:
        raise FeedbackError("Say why you dismiss it: the reason is recorded and shown to whoever flagged it.")
    if len(text) > PolicyFeedback.NOTE_MAX:
        raise FeedbackError(f"The reason is {len(text)} characters; at most {PolicyFeedback.NOTE_MAX}.")
    with transaction.atomic():
        feedback = _locked_open(feedback_id)
        feedback.status, feedback.dismiss_reason = "dismissed", text
        feedback.closed_by, feedback.closed_at = user, timezone.now()
        feedback.save()
    return feedback


def feedback_reopen(*, user, feedback_id: int, reason: str) -> PolicyFeedback:
    """A policy owner reopens a resolved or dismissed flag, saying why (the fix did not hold, the dismissal was
    wrong). The outcome it had (status, version or reason, who closed it and when) goes to its history with who
    reopened it, when and why; the flag is open again as if never closed. An open flag is refused."""
    roles.require_role(user, roles.POLICY_OWNER)
    text = (reason or "").strip()
    if not text:
        raise FeedbackError("Say why you reopen it: the reason is recorded in the flag's history.", code="reason")
    if len(text) > PolicyFeedback.NOTE_MAX:
        raise FeedbackError(f"The reason is {len(text)} characters; at most {PolicyFeedback.NOTE_MAX}.")
    with transaction.atomic():
        feedback = _locked(feedback_id)
        if feedback.status == PolicyFeedback.Status.OPEN:
            raise FeedbackError(
                f"Feedback #{feedback.pk} is open: only a resolved or dismissed flag can be reopened. Nothing changed.",
                code="not_closed",
            )
        resolved = feedback.status == PolicyFeedback.Status.RESOLVED
        history = PolicyFeedbackReopening(
            feedback=feedback, reason=text, reopened_by=user, previous_status=feedback.status,
            previous_version=feedback.resolved_in_version if resolved else None,
            previous_note=feedback.resolution_note if resolved else feedback.dismiss_reason,
            previous_closed_by=feedback.closed_by, previous_closed_at=feedback.closed_at,
        )  # fmt: skip
        history.full_clean(exclude=["feedback", "reopened_by", "previous_version", "previous_closed_by"])
        history.save()
        feedback.status, feedback.resolved_in_version, feedback.resolution_note = "open", None, ""
        feedback.dismiss_reason, feedback.closed_by, feedback.closed_at = "", None, None
        feedback.save()
    return feedback
