import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from labeling.models import Candidate, Review
from labeling.services import (
    ReviewError,
    review_adjudicate,
    review_claim_next,
    review_skip,
    review_submit,
    review_undo_last,
)
from policyhub import roles


@pytest.fixture
def annotators(make_user):
    return [make_user(f"ann{i}", roles.ANNOTATOR) for i in range(3)]


def test_an_annotator_gets_the_same_item_back_until_they_answer(review_items, annotators):
    review_items(3)
    first = review_claim_next(user=annotators[0])
    assert review_claim_next(user=annotators[0]).pk == first.pk
    other = review_claim_next(user=annotators[1])
    assert other.pk != first.pk


def test_one_review_approves_the_label_and_the_item_leaves_the_queue(review_items, annotators):
    review_items(1)
    item = review_claim_next(user=annotators[0])
    done = review_submit(user=annotators[0], candidate_id=item.pk, label="partial_match", note="Seniority gap.")
    assert (done.review_state, done.approved_label, done.approved_by) == ("done", "partial_match", "reviewers")
    assert review_claim_next(user=annotators[1]) is None


def test_two_reviewers_who_agree_approve_and_who_disagree_go_to_adjudication(review_items, annotators, owner):
    review_items(2, reviewers=2)
    a, b = annotators[0], annotators[1]
    first = review_claim_next(user=a)
    review_submit(user=a, candidate_id=first.pk, label="no_match")
    second = review_claim_next(user=a)
    review_submit(user=a, candidate_id=second.pk, label="no_match")
    assert review_claim_next(user=a) is None  # never the same item twice
    for _ in range(2):
        item = review_claim_next(user=b)
        review_submit(user=b, candidate_id=item.pk, label="no_match" if item.pk == first.pk else "strong_match")
    agreed, disputed = Candidate.objects.get(pk=first.pk), Candidate.objects.get(pk=second.pk)
    assert (agreed.review_state, agreed.approved_label) == ("done", "no_match")
    assert (disputed.review_state, disputed.approved_label) == ("adjudication", "")
    with pytest.raises(ReviewError, match="Say why"):
        review_adjudicate(user=owner, candidate_id=disputed.pk, label="no_match", reason=" ")
    with pytest.raises(PermissionDenied):
        review_adjudicate(user=a, candidate_id=disputed.pk, label="no_match", reason="I'm sure")
    final = review_adjudicate(user=owner, candidate_id=disputed.pk, label="partial_match", reason="R2: one level")
    assert (final.review_state, final.approved_label, final.approved_by) == ("done", "partial_match", "adjudicator")
    assert Review.objects.get(candidate=final, kind="adjudication").note == "R2: one level"


def test_bad_input_changes_nothing(review_items, annotators):
    review_items(2)
    mine = review_claim_next(user=annotators[0])
    with pytest.raises(ReviewError, match="not a label of this policy version"):
        review_submit(user=annotators[0], candidate_id=mine.pk, label="maybe")
    with pytest.raises(ReviewError, match="another annotator took it"):
        review_submit(user=annotators[1], candidate_id=mine.pk, label="no_match")
    with pytest.raises(ReviewError, match="no item"):
        review_submit(user=annotators[0], candidate_id=10**9, label="no_match")
    with pytest.raises(ReviewError, match="no review of yours to undo"):
        review_undo_last(user=annotators[0])
    assert Review.objects.count() == 0
    assert Candidate.objects.get(pk=mine.pk).claimed_by == annotators[0]


def test_an_expired_lease_is_taken_by_the_next_annotator_and_the_first_is_told(review_items, annotators):
    review_items(1)
    item = review_claim_next(user=annotators[0])
    Candidate.objects.filter(pk=item.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    assert review_claim_next(user=annotators[1]).pk == item.pk
    with pytest.raises(ReviewError, match="expired and another annotator took it"):
        review_submit(user=annotators[0], candidate_id=item.pk, label="no_match")
    review_submit(user=annotators[1], candidate_id=item.pk, label="no_match")
    assert Review.objects.get().reviewer == annotators[1]


def test_an_expired_lease_nobody_took_still_accepts_the_answer(review_items, annotators):
    review_items(1)
    item = review_claim_next(user=annotators[0])
    Candidate.objects.filter(pk=item.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    assert review_submit(user=annotators[0], candidate_id=item.pk, label="no_match").review_state == "done"


def test_skip_gives_the_item_to_others_but_not_back_to_me(review_items, annotators):
    review_items(1)
    item = review_claim_next(user=annotators[0])
    review_skip(user=annotators[0], candidate_id=item.pk)
    assert review_claim_next(user=annotators[0]) is None
    assert review_claim_next(user=annotators[1]).pk == item.pk


def test_undo_reopens_my_last_review_for_me(review_items, annotators):
    review_items(2)
    item = review_claim_next(user=annotators[0])
    review_submit(user=annotators[0], candidate_id=item.pk, label="no_match")
    back = review_undo_last(user=annotators[0])
    assert back.pk == item.pk and back.review_state == "pending" and back.approved_label == ""
    assert review_claim_next(user=annotators[0]).pk == item.pk
    assert not Review.objects.exists()
    review_submit(user=annotators[0], candidate_id=item.pk, label="strong_match")
    assert Candidate.objects.get(pk=item.pk).approved_label == "strong_match"


def test_filters_by_run_and_reason(review_items, annotators):
    first_run = review_items(2)
    Candidate.objects.filter(run=first_run).update(reason_low_confidence=False, reason_gold_conflict=True)
    assert review_claim_next(user=annotators[0], reason="low_confidence") is None
    assert review_claim_next(user=annotators[0], reason="gold_conflict").run_id == first_run.pk
    assert review_claim_next(user=annotators[1], run_id=first_run.pk + 1) is None


def test_only_annotators_claim(review_items, owner, engineer):
    review_items(1)
    for user in (owner, engineer):
        with pytest.raises(PermissionDenied):
            review_claim_next(user=user)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_sixteen_annotators_claiming_at_once_never_share_an_item(review_items, make_user):
    review_items(120)
    users = [make_user(f"c{i}", roles.ANNOTATOR) for i in range(16)]
    claims: list[tuple[int, int]] = []
    errors: list[Exception] = []
    start = threading.Barrier(len(users))

    def annotate(user):
        try:
            start.wait()
            while (item := review_claim_next(user=user)) is not None:
                claims.append((user.pk, item.pk))
                review_submit(user=user, candidate_id=item.pk, label="no_match")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=annotate, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    per_item = Counter(item for _, item in claims)
    assert len(per_item) == 120 and max(per_item.values()) == 1  # every item claimed once, by one annotator
    assert Review.objects.count() == 120
    assert len({user for user, _ in claims}) > 1  # the work was really shared


def test_a_held_item_outside_the_filter_is_not_served(review_items, annotators):
    run = review_items(1)
    held = review_claim_next(user=annotators[0])
    assert review_claim_next(user=annotators[0], reason="gold_conflict") is None
    assert review_claim_next(user=annotators[0], run_id=run.pk).pk == held.pk


def test_the_count_of_items_left_stops_at_the_cap(review_items, annotators):
    from labeling.selectors import review_queue_count

    review_items(5)
    assert review_queue_count(user=annotators[0]) == 5
    assert review_queue_count(user=annotators[0], cap=3) == 4  # "more than 3"
    item = review_claim_next(user=annotators[0])
    review_submit(user=annotators[0], candidate_id=item.pk, label="no_match")
    assert review_queue_count(user=annotators[0]) == 4  # reviewed by them: no longer theirs to take
