"""Human review of needs-review candidates: claim, submit, skip, undo, adjudicate.

An annotator can undo their last review within ``REVIEW_UNDO_WINDOW_SECONDS``, and never once the item was
adjudicated, is gold or is held by a dataset export.

The next item is claimed inside a short transaction with ``SELECT … FOR NO KEY UPDATE SKIP LOCKED`` on the
pending-items index plus a lease (``claimed_by`` / ``claim_expires_at``): two annotators never hold the same item,
an abandoned item returns to the queue when its lease expires, and nobody reviews the same item twice. When the
required reviews disagree the item goes to adjudication, where a policy owner's decision is final.
"""

from datetime import timedelta

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from exports.selectors import exports_holding
from policyhub import roles
from policyhub.models import Policy

from ..models import ApprovedBy, Candidate, GoldLabel, Review, ReviewSkip, ReviewState
from .figures import AGREEMENT, figures_mark_stale


class ReviewError(ValidationError):
    """A review action that cannot be done as asked; the message says why. Nothing was changed."""


def _lease() -> timedelta:
    return timedelta(seconds=settings.REVIEW_LEASE_SECONDS)


_HELD = (
    "UPDATE labeling_candidate SET claim_expires_at = %(until)s WHERE id = (SELECT c.id FROM labeling_candidate c "
    "WHERE c.review_state = 'pending' AND c.claimed_by_id = %(user)s AND c.claim_expires_at > %(now)s{filters} "
    "ORDER BY c.id LIMIT 1) RETURNING id"
)
_NEXT = (
    "UPDATE labeling_candidate SET claimed_by_id = %(user)s, claim_expires_at = %(until)s WHERE id = ("
    "SELECT c.id FROM labeling_candidate c WHERE c.review_state = 'pending' "
    "AND (c.claimed_by_id IS NULL OR c.claim_expires_at <= %(now)s) "
    "AND NOT EXISTS (SELECT 1 FROM labeling_review r WHERE r.candidate_id = c.id AND r.reviewer_id = %(user)s) "
    "AND NOT EXISTS (SELECT 1 FROM labeling_reviewskip s WHERE s.candidate_id = c.id AND s.reviewer_id = %(user)s)"
    "{filters} ORDER BY {order} LIMIT 1{lock}) RETURNING id"
)
#: Reasons whose queue is served by priority (highest first), then age: a student's most confident disagreements.
_BY_PRIORITY = ("student_disagreement",)


def review_claim_next(*, user, run_id: int | None = None, reason: str = "") -> Candidate | None:
    """The item this annotator holds within the filters (its lease renewed), or the next free one, claimed in one
    statement; None when the queue is empty. On PostgreSQL the pick is ``FOR NO KEY UPDATE SKIP LOCKED`` over the
    partial index of pending items, so concurrent annotators never wait for, or get, the same item."""
    roles.require_role(user, roles.ANNOTATOR)
    now = timezone.now()
    params = {"user": user.pk, "now": now, "until": now + _lease(), "run": run_id}
    filters = " AND c.run_id = %(run)s" if run_id else ""
    if reason in Candidate.REASONS:
        filters += f" AND c.reason_{reason}"  # a fixed column name from Candidate.REASONS
    lock = " FOR NO KEY UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    # each statement is atomic on its own: no BEGIN/COMMIT round trips around them
    row = _claim_statement(_HELD.format(filters=filters), params)
    if row is None:
        order = "c.review_priority DESC NULLS LAST, c.id" if reason in _BY_PRIORITY else "c.id"
        row = _claim_statement(_NEXT.format(filters=filters, lock=lock, order=order), params)
    return _load(row[0]) if row else None


def _claim_statement(sql: str, params: dict):
    """On PostgreSQL a prepared statement on this connection (planned once, not on every claim: planning cost as
    much as running it); elsewhere Django's cursor."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


def _load(candidate_id: int) -> Candidate:
    return Candidate.objects.select_related("run__policy_version__policy", "pair__member", "pair__job").get(
        pk=candidate_id
    )


def _locked(candidate_id: int) -> Candidate:
    try:
        return (
            Candidate.objects.select_for_update(no_key=True).select_related("run__policy_version").get(pk=candidate_id)
        )
    except Candidate.DoesNotExist:
        raise ReviewError(f"There is no item #{candidate_id}.") from None


def _check_claim(candidate: Candidate, user) -> None:
    if candidate.review_state != ReviewState.PENDING:
        raise ReviewError("This item no longer needs a review: nothing was saved.")
    if candidate.claimed_by_id == user.pk:
        return  # even with an expired lease: nobody else took it meanwhile
    if candidate.claimed_by_id is None:
        raise ReviewError("Your claim on this item expired and it went back to the queue: nothing was saved.")
    raise ReviewError("Your claim on this item expired and another annotator took it: nothing was saved.")


def _check_label(candidate: Candidate, label: str) -> None:
    keys = candidate.run.policy_version.label_keys
    if label not in keys:
        raise ReviewError(
            f"{label!r} is not a label of this policy version; choose one of {', '.join(keys)}.", code="bad_label"
        )


def review_submit(*, user, candidate_id: int, label: str, note: str = "") -> Candidate:
    """Record the annotator's label on the item they hold in the in-app queue."""
    roles.require_role(user, roles.ANNOTATOR)
    with transaction.atomic():
        candidate = _locked(candidate_id)
        _check_claim(candidate, user)
        _record_review(candidate, user=user, label=label, note=note)
    return candidate


def review_record(*, user, candidate_id: int, label: str, note: str = "") -> Candidate:
    """Record a review made outside the in-app queue (e.g. an annotation in Label Studio): no claim is needed,
    everything else is as for :func:`review_submit`."""
    roles.require_role(user, roles.ANNOTATOR)
    with transaction.atomic():
        candidate = _locked(candidate_id)
        _record_review(candidate, user=user, label=label, note=note)
    return candidate


def _record_review(candidate: Candidate, *, user, label: str, note: str) -> None:
    """The one state transition of a review, whatever tool it came from: save it, count it, and with all required
    reviews in approve the label (they agree) or send the item to adjudication (they disagree)."""
    if candidate.review_state != ReviewState.PENDING:
        raise ReviewError("This item no longer needs a review: nothing was saved.", code="not_pending")
    _check_label(candidate, label)
    try:
        with transaction.atomic():
            Review.objects.create(candidate=candidate, reviewer=user, label=label, note=note.strip()[:5000])
    except IntegrityError:
        raise ReviewError("You already reviewed this item.", code="already_reviewed") from None
    candidate.reviews_done += 1
    if candidate.claimed_by_id == user.pk:
        candidate.claimed_by, candidate.claim_expires_at = None, None
    if candidate.reviews_done >= candidate.reviews_needed:
        labels = set(candidate.reviews.filter(kind=Review.Kind.REVIEW).values_list("label", flat=True))
        if len(labels) == 1:
            candidate.approve(label, by=ApprovedBy.REVIEWERS)
        else:
            candidate.send_to_adjudication()
    candidate.save()
    figures_mark_stale(run_ids=[candidate.run_id], kinds=AGREEMENT)


def review_skip(*, user, candidate_id: int) -> None:
    """Give the item back; this annotator will not be offered it again."""
    roles.require_role(user, roles.ANNOTATOR)
    with transaction.atomic():
        candidate = _locked(candidate_id)
        _check_claim(candidate, user)
        ReviewSkip.objects.get_or_create(candidate=candidate, reviewer=user)
        candidate.claimed_by, candidate.claim_expires_at = None, None
        candidate.save(update_fields=["claimed_by", "claim_expires_at", "updated_at"])


def _undo_window() -> timedelta:
    return timedelta(seconds=settings.REVIEW_UNDO_WINDOW_SECONDS)


def _check_undoable(candidate: Candidate, review: Review, now) -> None:
    """An undo must not rewrite what others rely on: refused after the undo window, once the item was adjudicated
    or is gold, and once an export holds it (or may: one is being built from its run)."""
    window = _undo_window()
    if now - review.created_at > window:
        raise ReviewError(
            f"Your review of item #{candidate.pk} was saved at {timezone.localtime(review.created_at):%H:%M}; reviews "
            f"can only be undone within {_minutes(window)} of saving them.",
            code="undo_too_late",
        )
    if (
        candidate.approved_by == ApprovedBy.ADJUDICATOR
        or candidate.reviews.filter(kind=Review.Kind.ADJUDICATION).exists()
    ):
        raise ReviewError("That item was adjudicated meanwhile; its decision is final.", code="undo_adjudicated")
    if GoldLabel.objects.filter(policy_id=candidate.run.policy_version.policy_id, pair_id=candidate.pair_id).exists():
        raise ReviewError(
            f"Item #{candidate.pk} is in the gold set now, so your review of it stays. Ask a policy owner to remove it "
            "from the gold set first if the label is wrong.",
            code="undo_gold",
        )
    for export in exports_holding(candidate=candidate, since=review.created_at):
        what = "is being built and may include it" if export.status == export.Status.BUILDING else "includes it"
        raise ReviewError(
            f"Dataset export #{export.pk} {what}, so your review of item #{candidate.pk} stays: an export never "
            "changes after it is built.",
            code="undo_exported",
        )


def _minutes(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    return f"{minutes:g} minute{'' if minutes == 1 else 's'}"


def review_undo_last(*, user) -> Candidate:
    """Take back this annotator's last review within the undo window: the item is theirs to review again."""
    roles.require_role(user, roles.ANNOTATOR)
    with transaction.atomic():
        last = Review.objects.filter(reviewer=user, kind=Review.Kind.REVIEW).order_by("-created_at", "-id").first()
        if last is None:
            raise ReviewError("There is no review of yours to undo.")
        policy_id = Candidate.objects.filter(pk=last.candidate_id).values_list("run__policy_version__policy_id")
        Policy.objects.select_for_update().filter(pk__in=policy_id).first()  # the gold set's lock: no gold meanwhile
        candidate = _locked(last.candidate_id)
        now = timezone.now()
        _check_undoable(candidate, last, now)
        if candidate.claimed_by_id not in (None, user.pk) and candidate.claim_expires_at > now:
            raise ReviewError("Another annotator is reviewing that item right now; try again in a moment.")
        last.delete()
        candidate.reviews_done -= 1
        candidate.reopen()
        candidate.claimed_by, candidate.claim_expires_at = user, now + _lease()
        candidate.save()
        figures_mark_stale(run_ids=[candidate.run_id], kinds=AGREEMENT)
    return _load(candidate.pk)


def review_adjudicate(*, user, candidate_id: int, label: str, reason: str) -> Candidate:
    """A policy owner's final decision on an item whose reviewers disagreed, with the reason why."""
    roles.require_role(user, roles.POLICY_OWNER)
    if not reason.strip():
        raise ReviewError("Say why: the adjudication is final and its reason is recorded.")
    with transaction.atomic():
        candidate = _locked(candidate_id)
        if candidate.review_state != ReviewState.ADJUDICATION:
            raise ReviewError("This item is not waiting for adjudication.")
        _check_label(candidate, label)
        Review.objects.create(
            candidate=candidate, reviewer=user, kind=Review.Kind.ADJUDICATION, label=label, note=reason.strip()
        )
        candidate.approve(label, by=ApprovedBy.ADJUDICATOR)
        candidate.save()
        figures_mark_stale(run_ids=[candidate.run_id], kinds=AGREEMENT)
    return candidate
