# ruff: noqa: F811 - fixtures imported from the feedback API tests are parameters of the tests below
"""Reopening a closed flag: a policy owner reopens a resolved or dismissed flag with a reason, from the inbox or
the API; the outcome it had stays in its history (who closed it, when, how; who reopened it, when, why), shown on
the inbox; reopening an open flag, or without a reason, is refused with a clear message and changes nothing."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from labeling.models import PolicyFeedback, PolicyFeedbackReopening
from labeling.services.feedback import (
    FeedbackError,
    feedback_create,
    feedback_dismiss,
    feedback_reopen,
    feedback_resolve,
)

from .test_feedback_api import api, held  # noqa: F401 (fixtures)

REASON = "The fix in v2 did <b>not</b> hold: R2 still reads both ways."


@pytest.fixture
def flagged(held, annotator):
    feedback, _ = feedback_create(
        user=annotator, candidate_id=held.pk, kind="unclear_rule", rule_ids=["R2"], note="One level: mid→senior?"
    )
    return feedback


def test_an_owner_reopens_a_resolved_flag_and_its_outcome_stays_in_the_history(flagged, owner, make_user):
    other = make_user("omar", "policy_owner")
    feedback_resolve(user=other, feedback_id=flagged.pk, version_number=2, note="R2 reworded")

    reopened = feedback_reopen(user=owner, feedback_id=flagged.pk, reason=f"  {REASON} ")

    stored = PolicyFeedback.objects.get(pk=flagged.pk)
    assert (stored.status, stored.resolved_in_version, stored.resolution_note, stored.closed_by) == (
        "open",
        None,
        "",
        None,
    )
    assert reopened.status == "open"
    (history,) = PolicyFeedbackReopening.objects.filter(feedback=flagged)
    assert (history.reason, history.reopened_by, history.previous_status) == (REASON, owner, "resolved")
    assert (history.previous_version.number, history.previous_note, history.previous_closed_by) == (
        2,
        "R2 reworded",
        other,
    )
    assert history.previous_closed_at is not None and history.reopened_at >= history.previous_closed_at
    # open again: it can be closed again, and reopened again; each time is kept
    feedback_dismiss(user=owner, feedback_id=flagged.pk, reason="Duplicate of #1.")
    feedback_reopen(user=owner, feedback_id=flagged.pk, reason="Not a duplicate after all.")
    rows = list(
        PolicyFeedbackReopening.objects.filter(feedback=flagged).values_list("previous_status", "previous_note")
    )
    assert rows == [("resolved", "R2 reworded"), ("dismissed", "Duplicate of #1.")]


@pytest.mark.parametrize(
    ("close", "reason", "message"),
    [
        (False, REASON, "is open: only a resolved or dismissed flag can be reopened"),
        (True, "   ", "Say why you reopen it"),
        (True, "x" * 5001, "The reason is 5001 characters; at most 5000."),
    ],
)
def test_a_refused_reopen_says_why_and_changes_nothing(flagged, owner, close, reason, message):
    if close:
        feedback_dismiss(user=owner, feedback_id=flagged.pk, reason="Not a policy problem.")
    before = PolicyFeedback.objects.filter(pk=flagged.pk).values().get()
    with pytest.raises(FeedbackError, match=message):
        feedback_reopen(user=owner, feedback_id=flagged.pk, reason=reason)
    assert PolicyFeedback.objects.filter(pk=flagged.pk).values().get() == before
    assert not PolicyFeedbackReopening.objects.exists()


def test_only_policy_owners_reopen(flagged, owner, annotator, engineer):
    feedback_dismiss(user=owner, feedback_id=flagged.pk, reason="Not a policy problem.")
    for user in (annotator, engineer):
        with pytest.raises(PermissionDenied):
            feedback_reopen(user=user, feedback_id=flagged.pk, reason=REASON)
    assert PolicyFeedback.objects.get(pk=flagged.pk).status == "dismissed"


def test_the_database_refuses_a_history_row_of_an_open_flag(flagged, owner):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyFeedbackReopening.objects.create(
            feedback=flagged, reason="why", reopened_by=owner, previous_status="open",
            previous_closed_at=flagged.created_at,
        )  # fmt: skip


def test_the_inbox_reopens_with_a_reason_and_shows_the_history(flagged, owner, annotator, client_for):
    feedback_dismiss(user=owner, feedback_id=flagged.pk, reason="R2 is clear: see example 2.")
    client = client_for(owner)
    dismissed = client.get("/policies/match/feedback/?status=dismissed").content.decode()
    url = f"/policies/match/feedback/{flagged.pk}/reopen/"
    assert f'action="{url}"' in dismissed and "Why reopen #" in dismissed

    empty = client.post(url, {"reason": " ", "next": "/policies/match/feedback/?status=dismissed"}, follow=True)
    assert "Say why you reopen it" in empty.content.decode()
    assert PolicyFeedback.objects.get(pk=flagged.pk).status == "dismissed"

    done = client.post(url, {"reason": REASON, "next": "/policies/match/feedback/?status=dismissed"})
    assert done.status_code == 302 and done["Location"] == "/policies/match/feedback/?status=dismissed"
    assert PolicyFeedback.objects.get(pk=flagged.pk).status == "open"
    page = client.get("/policies/match/feedback/").content.decode()
    row = page[page.index(f'data-feedback="{flagged.pk}"') :]
    assert "Reopened 1 time" in row and "Reopened by <strong>olivia</strong>" in row
    assert "It was dismissed by olivia" in row and "R2 is clear: see example 2." in row
    assert "did &lt;b&gt;not&lt;/b&gt; hold" in row and "<b>not</b>" not in page  # escaped
    assert f'action="{url}"' not in page  # open: nothing to reopen
    again = client.post(url, {"reason": REASON}, follow=True).content.decode()
    assert "is open: only a resolved or dismissed flag can be reopened" in again
    # the annotator who flagged it sees the history, without the form
    mine = client_for(annotator).get("/policies/match/feedback/").content.decode()
    assert "Reopened by <strong>olivia</strong>" in mine and "Why reopen" not in mine


@pytest.mark.parametrize("who", ["annotator", "engineer", "nobody"])
def test_only_policy_owners_reopen_from_the_inbox(flagged, owner, request, client_for, who):
    feedback_dismiss(user=owner, feedback_id=flagged.pk, reason="Not a policy problem.")
    response = client_for(request.getfixturevalue(who)).post(
        f"/policies/match/feedback/{flagged.pk}/reopen/", {"reason": REASON}
    )
    assert response.status_code == 403 and PolicyFeedback.objects.get(pk=flagged.pk).status == "dismissed"


def test_the_inbox_reopen_needs_the_csrf_token(flagged, owner):
    feedback_dismiss(user=owner, feedback_id=flagged.pk, reason="Not a policy problem.")
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(f"/policies/match/feedback/{flagged.pk}/reopen/", {"reason": REASON}).status_code == 403
    assert PolicyFeedback.objects.get(pk=flagged.pk).status == "dismissed"


def test_the_api_reopens_and_lists_the_history(api, flagged, owner, annotator, engineer):
    url = f"/api/feedback/{flagged.pk}/reopen"
    still_open = api("post", url, owner, {"reason": REASON})
    assert (
        still_open.status_code == 400
        and "only a resolved or dismissed flag can be reopened" in still_open.json()["detail"]
    )
    assert (
        api("post", f"/api/feedback/{flagged.pk}/resolve", owner, {"version": 2, "note": "R2 reworded"}).status_code
        == 200
    )
    assert api("post", url, owner, {"reason": ""}).json()["detail"].startswith("Say why you reopen it")
    for user, status in ((annotator, 403), (engineer, 403), (None, 401)):
        assert api("post", url, user, {"reason": REASON}).status_code == status
    assert api("post", "/api/feedback/999999/reopen", owner, {"reason": REASON}).status_code == 404

    response = api("post", url, owner, {"reason": REASON})

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["resolved_in_version"], body["closed_by"]) == ("open", None, None)
    (history,) = body["history"]
    keys = ("reopened_by", "reason", "previous_status", "previous_version", "previous_note")
    assert {k: history[k] for k in keys} == {
        "reopened_by": "olivia", "reason": REASON, "previous_status": "resolved", "previous_version": 2,
        "previous_note": "R2 reworded",
    }  # fmt: skip
    assert history["previous_closed_by"] == "olivia"
    assert api("get", f"/api/feedback/{flagged.pk}", annotator).json()["history"] == body["history"]
    assert [row["id"] for row in api("get", "/api/policies/match/feedback?status=open", owner).json()] == [flagged.pk]
