"""Policy feedback as a service: who may flag which item, what a flag must name, how a policy owner resolves or
dismisses it, the invariants the database keeps, and the per-rule figures the draft editor shows."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import Candidate, PolicyFeedback, TeacherSample
from labeling.selectors.feedback import feedback_counts, feedback_list, rule_feedback
from labeling.services import review_claim_next, review_skip, review_submit
from labeling.services.feedback import (
    FeedbackError,
    FeedbackNotFound,
    feedback_create,
    feedback_dismiss,
    feedback_resolve,
)
from policyhub import roles


@pytest.fixture
def held(review_items, annotator):
    """An item the annotator holds in the review queue (run of the published v1)."""
    review_items(3)
    return review_claim_next(user=annotator)


def flag(user, candidate, kind="unclear_rule", rules=("R2",), note="Does 'one level' count mid → senior?", **kw):
    return feedback_create(user=user, candidate_id=candidate.pk, kind=kind, rule_ids=list(rules), note=note, **kw)


def test_an_annotator_flags_the_item_they_hold_and_the_review_stays_theirs(held, annotator, published, settings):
    Candidate.objects.filter(pk=held.pk).update(claim_expires_at=timezone.now() + timedelta(seconds=5))
    feedback, created = flag(annotator, held, rules=["r2"])

    assert created
    feedback.refresh_from_db()
    assert (feedback.policy, feedback.version, feedback.candidate, feedback.pair_id) == (
        published.policy, published, held, held.pair_id)  # fmt: skip
    assert (feedback.kind, feedback.rule_ids, feedback.status, feedback.created_by) == (
        "unclear_rule", ["R2"], "open", annotator)  # fmt: skip
    held_after = Candidate.objects.get(pk=held.pk)
    assert (held_after.claimed_by, held_after.review_state, held_after.reviews_done) == (annotator, "pending", 0)
    renewed = held_after.claim_expires_at - timezone.now()  # writing the flag renewed the claim's lease
    assert timedelta(seconds=settings.REVIEW_LEASE_SECONDS - 30) < renewed <= timedelta(
        seconds=settings.REVIEW_LEASE_SECONDS)  # fmt: skip
    review_submit(user=annotator, candidate_id=held.pk, label="no_match")  # the review goes on as before


@pytest.mark.parametrize(
    ("kind", "rules", "note", "message"),
    [
        ("unclear_rule", ["R9"], "x", "R9 is not a rule of match v1, the version this item was labelled under (its "
                                      "rules are R1, R2, R3)."),
        ("unclear_rule", [], "x", "Name the rule that is unclear"),
        ("rules_conflict", ["R1"], "x", "Name at least two rules that conflict"),
        ("not_covered", [], "   ", "Say what the problem is in the note"),
        ("typo", [], "x", "'typo' is not a kind of feedback"),
    ],
)  # fmt: skip
def test_a_bad_flag_is_refused_with_what_to_change_and_nothing_is_written(held, annotator, kind, rules, note, message):
    with pytest.raises(FeedbackError) as refused:
        flag(annotator, held, kind=kind, rules=rules, note=note)
    assert message in " ".join(refused.value.messages)
    assert not PolicyFeedback.objects.exists()


def test_kinds_without_rules_and_a_conflict_between_two_rules_are_accepted(held, annotator):
    assert flag(annotator, held, kind="not_covered", rules=[], note="Career changers are not covered.")[1]
    assert flag(annotator, held, kind="label_set_missing", rules=[], note="Need 'overqualified'.")[1]
    assert flag(annotator, held, kind="rules_conflict", rules=["R1", "R3", "R1"], note="R1 vs R3.")[0].rule_ids == [
        "R1", "R3"]  # fmt: skip


def test_who_may_flag_which_item(held, review_items, annotator, make_user, owner, engineer):
    other = make_user("bea", roles.ANNOTATOR)
    with pytest.raises(FeedbackNotFound):  # held by someone else, never shown to bea
        flag(other, held)
    with pytest.raises(PermissionDenied):
        flag(engineer, held)
    assert flag(owner, held)[1]  # policy owners may flag any item of a labeling run
    # an annotator may flag what they reviewed or skipped, once it left their hands
    review_submit(user=annotator, candidate_id=held.pk, label="no_match")
    assert flag(annotator, held)[1]
    skipped = review_claim_next(user=other)
    review_skip(user=other, candidate_id=skipped.pk)
    assert flag(other, skipped)[1]
    with pytest.raises(FeedbackNotFound):
        feedback_create(user=annotator, candidate_id=10**9, kind="not_covered", rule_ids=[], note="x")


def test_the_same_idempotency_key_returns_the_first_flag(held, annotator):
    first, created = flag(annotator, held, idempotency_key="k-1")
    again, created_again = flag(annotator, held, note="another text", idempotency_key="k-1")
    assert created and not created_again and again.pk == first.pk
    assert PolicyFeedback.objects.count() == 1


def test_a_policy_owner_resolves_in_a_later_version_or_dismisses_with_a_reason(held, annotator, owner, policy):
    feedback, _ = flag(annotator, held)
    with pytest.raises(PermissionDenied):
        feedback_resolve(user=annotator, feedback_id=feedback.pk, version_number=2)
    with pytest.raises(FeedbackError, match="resolve it in a later version"):
        feedback_resolve(user=owner, feedback_id=feedback.pk, version_number=1)
    with pytest.raises(FeedbackError, match="match has no version 7"):
        feedback_resolve(user=owner, feedback_id=feedback.pk, version_number=7)

    resolved = feedback_resolve(user=owner, feedback_id=feedback.pk, version_number=2, note=" R2 now says ±1 level. ")
    resolved.refresh_from_db()
    assert (resolved.status, resolved.resolved_in_version.number, resolved.resolution_note, resolved.closed_by) == (
        "resolved", 2, "R2 now says ±1 level.", owner)  # fmt: skip
    with pytest.raises(FeedbackError, match=f"Feedback #{feedback.pk} was already resolved by olivia"):
        feedback_dismiss(user=owner, feedback_id=feedback.pk, reason="dup")

    other, _ = flag(annotator, held, kind="not_covered", rules=[], note="Freelancers?")
    with pytest.raises(FeedbackError, match="Say why you dismiss it"):
        feedback_dismiss(user=owner, feedback_id=other.pk, reason="  ")
    dismissed = feedback_dismiss(user=owner, feedback_id=other.pk, reason="Out of scope: freelancers are not members.")
    assert (dismissed.status, dismissed.dismiss_reason) == ("dismissed", "Out of scope: freelancers are not members.")
    assert feedback_counts(user=owner, policy=policy) == {"open": 0, "resolved": 1, "dismissed": 1}
    assert [f.pk for f in feedback_list(user=owner, policy=policy, resolved_in=2)] == [feedback.pk]


@pytest.mark.parametrize(
    "change",
    [
        {"status": "resolved"},  # resolved needs the version
        {"status": "dismissed"},  # dismissed needs a reason
        {"status": "dismissed", "dismiss_reason": "dup"},  # ... and a time it was closed
        {"kind": "rules_conflict", "rule_ids": ["R1"]},
        {"kind": "unclear_rule", "rule_ids": []},
        {"note": ""},
        {"status": "closed"},
    ],
)
def test_the_database_refuses_feedback_whose_outcome_does_not_add_up(held, annotator, change):
    feedback, _ = flag(annotator, held)
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyFeedback.objects.filter(pk=feedback.pk).update(**change)


def test_annotators_see_their_own_flags_and_owners_and_engineers_all(held, annotator, make_user, owner, engineer,
                                                                     policy):  # fmt: skip
    mine, _ = flag(annotator, held)
    theirs, _ = flag(owner, held, kind="not_covered", rules=[], note="owner's own")
    assert [f.pk for f in feedback_list(user=annotator, policy=policy)] == [mine.pk]
    assert {f.pk for f in feedback_list(user=owner, policy=policy)} == {mine.pk, theirs.pk}
    assert {f.pk for f in feedback_list(user=engineer, policy=policy)} == {mine.pk, theirs.pk}
    assert list(feedback_list(user=make_user("nina"), policy=policy)) == []
    assert [f.pk for f in feedback_list(user=owner, policy=policy, rule="R2")] == [mine.pk]
    assert list(feedback_list(user=owner, policy=policy, rule="R1")) == []
    assert list(feedback_list(user=owner, policy=policy, rule="R%")) == []  # not a rule ID: nothing cites it


def test_rule_figures_count_open_flags_and_overrides_of_the_teacher_on_items_citing_the_rule(
    review_items, annotator, make_user, owner
):
    """Three reviewed items, the teacher said strong_match on each; its samples cited R1+R2, R2, R3. Annotators
    overrode the first two (R1: 1 of 1, R2: 2 of 2) and agreed on the third (R3: 0 of 1)."""
    run = review_items(4)
    items = list(Candidate.objects.filter(run=run).order_by("id"))
    for candidate, cited in zip(items, (["R1", "R2"], ["R2"], ["R3"], ["R1"]), strict=True):
        TeacherSample.objects.create(run=run, pair=candidate.pair, sample_index=0, label="strong_match",
                                     rationale="fits", cited_rules=cited)  # fmt: skip
    TeacherSample.objects.create(run=run, pair=items[2].pair, sample_index=1, label="no_match", cited_rules=["R1"])
    for label in ("no_match", "partial_match", "strong_match"):
        claimed = review_claim_next(user=annotator)
        review_submit(user=annotator, candidate_id=claimed.pk, label=label)
    flag(annotator, items[0], rules=["R2"])
    flag(annotator, items[1], kind="rules_conflict", rules=["R2", "R3"], note="R2 and R3 pull apart.")
    resolved, _ = flag(annotator, items[1], rules=["R3"])
    feedback_resolve(user=owner, feedback_id=resolved.pk, version_number=2)

    stats = rule_feedback(policy=run.policy_version.policy)

    figures = {rule: (s.open_flags, s.overridden, s.reviewed) for rule, s in stats.items()}
    assert figures == {"R1": (0, 1, 1), "R2": (2, 2, 2), "R3": (1, 0, 1)}  # item 4 is not reviewed: not counted
    assert stats["R2"].override_share == 1.0 and stats["R3"].override_share == 0.0
