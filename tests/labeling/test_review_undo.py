"""Undo is for slips: an annotator can take back their last review within ``REVIEW_UNDO_WINDOW_SECONDS`` of saving
it, and never once the item is gold or held by a dataset export (built, or being built, from its run after the
review). The service refuses with a message saying why and changes nothing; the queue page and the API show it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exports.models import DatasetExport
from exports.services import export_build, export_create
from labeling.models import Candidate, GoldLabel, Review
from labeling.services import ReviewError, gold_mark, review_claim_next, review_submit, review_undo_last
from policyhub import services as policy_services

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def reviewed(review_items, annotator):
    """One item of a finished run that ``annotator`` just reviewed (approving it: one reviewer per item)."""
    run = review_items(1)
    run.status = run.Status.SUCCEEDED
    run.save(update_fields=["status"])
    item = review_claim_next(user=annotator, run_id=run.pk)
    return review_submit(user=annotator, candidate_id=item.pk, label="no_match")


def _age(candidate, seconds: float) -> None:
    Review.objects.filter(candidate=candidate).update(created_at=timezone.now() - timedelta(seconds=seconds))


def _unchanged(candidate, annotator) -> None:
    candidate.refresh_from_db()
    assert (candidate.review_state, candidate.approved_label, candidate.reviews_done) == ("done", "no_match", 1)
    assert Review.objects.filter(candidate=candidate, reviewer=annotator).exists()


def _export(engineer, run, **filters) -> DatasetExport:
    export, _ = export_create(user=engineer, version=run.policy_version, runs=[run], filters=filters)
    return export_build(export_id=export.pk)


# --- the window ---------------------------------------------------------------------------------------------
def test_a_review_can_be_undone_within_the_window(reviewed, annotator, settings):
    settings.REVIEW_UNDO_WINDOW_SECONDS = 600
    _age(reviewed, 590)

    back = review_undo_last(user=annotator)

    assert (back.pk, back.review_state, back.approved_label, back.reviews_done) == (reviewed.pk, "pending", "", 0)
    assert not Review.objects.exists()


def test_the_window_is_ten_minutes_unless_set(settings):
    from policyhub import settings as project_settings

    assert project_settings.REVIEW_UNDO_WINDOW_SECONDS == 600


def test_undo_after_the_window_is_refused_and_changes_nothing(reviewed, annotator, settings):
    settings.REVIEW_UNDO_WINDOW_SECONDS = 600
    _age(reviewed, 601)
    saved = timezone.localtime(Review.objects.get().created_at)

    with pytest.raises(ReviewError) as refused:
        review_undo_last(user=annotator)

    assert refused.value.messages == [
        f"Your review of item #{reviewed.pk} was saved at {saved:%H:%M}; reviews can only be undone within "
        "10 minutes of saving them."
    ]
    _unchanged(reviewed, annotator)


def test_the_window_follows_the_setting(reviewed, annotator, settings):
    settings.REVIEW_UNDO_WINDOW_SECONDS = 60
    _age(reviewed, 90)

    with pytest.raises(ReviewError, match="within 1 minute of saving"):
        review_undo_last(user=annotator)

    settings.REVIEW_UNDO_WINDOW_SECONDS = 120
    assert review_undo_last(user=annotator).review_state == "pending"


# --- gold -----------------------------------------------------------------------------------------------------
def test_undo_is_refused_once_the_item_is_gold(reviewed, annotator, owner):
    gold_mark(user=owner, candidate_id=reviewed.pk)

    with pytest.raises(ReviewError, match=f"Item #{reviewed.pk} is in the gold set now, so your review of it stays"):
        review_undo_last(user=annotator)

    _unchanged(reviewed, annotator)
    assert GoldLabel.objects.get().label == "no_match"


def test_gold_under_another_policy_does_not_block_the_undo(reviewed, annotator, owner, make_user):
    from policyhub.models import Policy

    other = policy_services.policy_create(
        slug="other", name="Other", task_description="?", owner=owner, body="", labels=[], rules=[]
    )
    GoldLabel.objects.create(policy=Policy.objects.get(pk=other.pk), pair_id=reviewed.pair_id, label="yes")

    assert review_undo_last(user=annotator).review_state == "pending"


# --- exports --------------------------------------------------------------------------------------------------
def test_undo_is_refused_once_a_built_export_includes_the_item(reviewed, annotator, engineer, settings, tmp_path):
    settings.EXPORTS_ROOT = tmp_path
    export = _export(engineer, reviewed.run)
    assert export.status == "ready" and export.rows_total == 1

    with pytest.raises(ReviewError) as refused:
        review_undo_last(user=annotator)

    assert refused.value.messages == [
        f"Dataset export #{export.pk} includes it, so your review of item #{reviewed.pk} stays: an export never "
        "changes after it is built."
    ]
    _unchanged(reviewed, annotator)


def test_a_deleted_export_that_included_the_item_still_blocks_the_undo(
    reviewed, annotator, engineer, settings, tmp_path
):
    from exports.services import export_delete

    settings.EXPORTS_ROOT = tmp_path
    export = _export(engineer, reviewed.run)
    export_delete(export=export, user=engineer)

    with pytest.raises(ReviewError, match=f"Dataset export #{export.pk} includes it"):
        review_undo_last(user=annotator)


def test_an_export_being_built_from_the_run_blocks_the_undo(reviewed, annotator, engineer):
    export, _ = export_create(user=engineer, version=reviewed.run.policy_version, runs=[reviewed.run])
    DatasetExport.objects.filter(pk=export.pk).update(status="building", started_at=timezone.now())

    with pytest.raises(ReviewError, match=f"Dataset export #{export.pk} is being built and may include it"):
        review_undo_last(user=annotator)
    _unchanged(reviewed, annotator)


def test_exports_that_do_not_hold_the_item_do_not_block_the_undo(
    reviewed, annotator, engineer, settings, tmp_path, review_items
):
    settings.EXPORTS_ROOT = tmp_path
    # built before the review: it held the teacher's label, not this review
    before = _export(engineer, reviewed.run, approved_only=False)
    DatasetExport.objects.filter(pk=before.pk).update(finished_at=Review.objects.get().created_at - timedelta(1))
    # built after it, but its filters leave the item out (teacher confidence 0.5; no gold)
    confident = _export(engineer, reviewed.run, min_confidence=0.9)
    gold_only = _export(engineer, reviewed.run, gold_only=True)
    assert (confident.rows_total, gold_only.rows_total) == (0, 0)
    # a queued export has not selected anything yet: it will see the undo
    export_create(user=engineer, version=reviewed.run.policy_version, runs=[reviewed.run])
    # an export of another run of the same version
    other = review_items(1)
    other.status = other.Status.SUCCEEDED
    other.save(update_fields=["status"])
    Candidate.objects.filter(run=other).update(approved_label="strong_match", approved_by="teacher", review_state="")
    assert _export(engineer, other).rows_total == 1

    assert review_undo_last(user=annotator).review_state == "pending"


# --- the page and the API -------------------------------------------------------------------------------------
def test_the_queue_page_says_why_an_undo_is_refused(reviewed, annotator, client_for, settings):
    settings.REVIEW_UNDO_WINDOW_SECONDS = 600
    _age(reviewed, 700)
    client = client_for(annotator)

    response = client.post("/review/undo/", **HTMX)

    assert response.status_code == 400
    assert "reviews can only be undone within 10 minutes of saving them" in response.content.decode()
    page = client.post("/review/undo/", follow=True)
    assert "reviews can only be undone within 10 minutes of saving them" in page.content.decode()
    _unchanged(reviewed, annotator)


def test_the_queue_page_undoes_within_the_window(reviewed, annotator, client_for):
    response = client_for(annotator).post("/review/undo/", **HTMX)

    assert response.status_code == 200
    assert f"Took back your review of item #{reviewed.pk}" in response.content.decode()
    assert not Review.objects.exists()


def test_the_api_undoes_within_the_window_and_says_why_not_otherwise(reviewed, annotator, owner, client):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {policy_services.api_token_create(user=annotator, name='t').raw}"}
    gold_mark(user=owner, candidate_id=reviewed.pk)

    refused = client.post("/api/reviews/undo", **auth)

    assert refused.status_code == 400
    assert refused.json()["detail"].startswith(f"Item #{reviewed.pk} is in the gold set now")
    _unchanged(reviewed, annotator)

    GoldLabel.objects.all().delete()
    undone = client.post("/api/reviews/undo", **auth)

    assert undone.status_code == 200
    body = undone.json()
    assert (body["candidate_id"], body["review_state"], body["reviews_done"]) == (reviewed.pk, "pending", 0)
    nothing = client.post("/api/reviews/undo", **auth)
    assert nothing.status_code == 400 and nothing.json()["detail"] == "There is no review of yours to undo."


def test_the_api_undo_needs_the_annotator_role(reviewed, engineer, client):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {policy_services.api_token_create(user=engineer, name='t').raw}"}

    assert client.post("/api/reviews/undo", **auth).status_code == 403
    assert client.post("/api/reviews/undo").status_code == 401
    assert Review.objects.count() == 1
