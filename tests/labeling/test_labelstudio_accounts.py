"""Linking a PolicyHub user to their Label Studio account, against a real Label Studio server: the person gives
their own Label Studio access token once, PolicyHub asks Label Studio whose it is and keeps only that user id.
Pulled annotations are mapped by that id alone: an email in Label Studio (unverified there) maps nobody."""

import pytest
from django.db import connection

from labeling.models import Candidate, LabelStudioAccount, Review
from labeling.services import (
    LabelStudioError,
    LabelStudioNotConfigured,
    labelstudio_account_link,
    labelstudio_account_unlink,
    labelstudio_pull,
    labelstudio_push,
)
from policyhub import roles

pytestmark = pytest.mark.labelstudio

URL = "/account/labelstudio/"


def _stored_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM labeling_labelstudioaccount")
        return " ".join(str(value) for row in cursor.fetchall() for value in row)


# --- linking ------------------------------------------------------------------------------------------------
def test_linking_keeps_the_label_studio_user_id_the_token_proves_and_not_the_token(labelstudio, annotator):
    token = labelstudio.annotator_token("arjun.ls@example.org")  # his Label Studio email differs from PolicyHub's

    account = labelstudio_account_link(user=annotator, token=f"  {token}\n")

    assert account.labelstudio_user_id == labelstudio.user_id("arjun.ls@example.org")
    assert (account.user, account.email) == (annotator, "arjun.ls@example.org")
    assert LabelStudioAccount.objects.get().labelstudio_user_id == account.labelstudio_user_id
    assert token not in _stored_text()


def test_a_token_label_studio_does_not_accept_links_nothing(labelstudio, annotator):
    with pytest.raises(LabelStudioError, match="Label Studio does not accept that token") as refused:
        labelstudio_account_link(user=annotator, token="not-a-real-token-0123456789")

    assert "not-a-real-token" not in str(refused.value)
    with pytest.raises(LabelStudioError, match="Paste your Label Studio access token"):
        labelstudio_account_link(user=annotator, token="   ")
    assert not LabelStudioAccount.objects.exists()


def test_one_label_studio_account_per_policyhub_user_and_back(labelstudio, annotator, make_user):
    bea = make_user("bea", roles.ANNOTATOR)
    first = labelstudio_account_link(user=annotator, token=labelstudio.annotator_token("arjun@example.com"))

    with pytest.raises(LabelStudioError, match=f"Label Studio user #{first.labelstudio_user_id} .* is already linked"):
        labelstudio_account_link(user=bea, token=labelstudio.annotator_token("arjun@example.com"))
    with pytest.raises(LabelStudioError, match="You are already linked to Label Studio user"):
        labelstudio_account_link(user=annotator, token=labelstudio.annotator_token("bea@example.com"))
    assert list(LabelStudioAccount.objects.values_list("user__username", flat=True)) == ["arjun"]

    labelstudio_account_unlink(user=annotator)
    moved = labelstudio_account_link(user=bea, token=labelstudio.annotator_token("arjun@example.com"))
    assert moved.user == bea


def test_linking_needs_a_role_and_label_studio_configured(settings, nobody, annotator):
    from django.core.exceptions import PermissionDenied

    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_KEY = "http://127.0.0.1:9", "key"
    with pytest.raises(PermissionDenied):
        labelstudio_account_link(user=nobody, token="abc")
    settings.LABEL_STUDIO_URL = ""
    with pytest.raises(LabelStudioNotConfigured):
        labelstudio_account_link(user=annotator, token="abc")
    assert not LabelStudioAccount.objects.exists()


# --- pulls map by the linked id only ------------------------------------------------------------------------
def test_only_linked_label_studio_users_annotations_become_reviews(
    labelstudio, labelstudio_link, review_items, annotator, make_user, engineer, client_for
):
    """Two Label Studio users annotate: bea linked her account; 'arjun@example.com' signed up in Label Studio with
    the email of PolicyHub's arjun but nobody linked that account, so it is reported and applied as no one's."""
    bea = make_user("bea", roles.ANNOTATOR)
    labelstudio_link(bea, email="bea.ls@example.org")
    run = review_items(2)
    first, second = Candidate.objects.filter(run=run).order_by("pk")
    project = labelstudio_push(run=run).project_id
    labelstudio.annotate("bea.ls@example.org", labelstudio.task_id(project, first.pk), "no_match")
    labelstudio.annotate(annotator.email, labelstudio.task_id(project, second.pk), "strong_match")
    labelstudio.annotate(annotator.email, labelstudio.task_id(project, first.pk), "strong_match")
    impostor = labelstudio.user_id(annotator.email)

    report = labelstudio_pull(run=run)

    assert [(row["candidate_id"], row["label"]) for row in report.applied] == [(first.pk, "no_match")]
    assert Review.objects.get(candidate=first).reviewer == bea
    assert not Review.objects.filter(reviewer=annotator).exists()
    second.refresh_from_db()
    assert (second.review_state, second.reviews_done) == ("pending", 0)
    assert report.unknown_annotators == [{"labelstudio_user_id": impostor, "email": annotator.email, "annotations": 2}]
    assert f"2 by Label Studio users not linked to PolicyHub (not applied): #{impostor} {annotator.email}" in (
        report.message
    )
    page = client_for(engineer).get(f"/runs/{run.pk}/").content.decode()
    unlinked = page.split('id="labelstudio-unlinked"', 1)[1].split("</div>", 1)[0]
    assert f"<td>#{impostor}</td>" in unlinked and annotator.email in unlinked and "<td>2</td>" in unlinked

    # once arjun links that Label Studio account with its own token, the next pull applies his annotations
    labelstudio_link(annotator)
    later = labelstudio_pull(run=run)

    assert sorted(row["candidate_id"] for row in later.applied) == [second.pk]
    assert later.unknown_annotators == [] and later.already_imported == 1
    assert [row["reason"] for row in later.skipped] == ["the item no longer needs a review (already done or in "
                                                        "adjudication)"]  # fmt: skip
    second.refresh_from_db()
    assert (second.review_state, second.approved_label) == ("done", "strong_match")
    assert Review.objects.get(candidate=second).reviewer == annotator


def test_an_unlinked_account_stops_being_applied(labelstudio, labelstudio_link, review_items, annotator):
    labelstudio_link(annotator)
    labelstudio_account_unlink(user=annotator)
    run = review_items(1)
    project = labelstudio_push(run=run).project_id
    labelstudio.annotate(annotator.email, labelstudio.task_id(project, run.candidates.get().pk), "no_match")

    report = labelstudio_pull(run=run)

    assert report.applied == [] and not Review.objects.exists()
    assert [entry["email"] for entry in report.unknown_annotators] == [annotator.email]


# --- the page -----------------------------------------------------------------------------------------------
def test_the_page_links_with_a_pasted_token_and_shows_the_link(labelstudio, annotator, client_for):
    client = client_for(annotator)
    form = client.get(URL)
    assert form.status_code == 200 and 'type="password" id="labelstudio-token" name="token"' in form.content.decode()
    assert "no-store" in form["Cache-Control"]
    token = labelstudio.annotator_token(annotator.email)

    linked = client.post(URL, {"token": token}, follow=True)

    html = linked.content.decode()
    ls_id = labelstudio.user_id(annotator.email)
    assert linked.redirect_chain == [(URL, 302)]
    assert f"Linked to Label Studio user #{ls_id} ({annotator.email})." in html
    assert f"linked to Label Studio user <strong>#{ls_id}</strong>" in html
    assert token not in html
    assert LabelStudioAccount.objects.get(user=annotator).labelstudio_user_id == ls_id

    unlinked = client.post(f"{URL}unlink/", follow=True)
    assert "Unlinked your Label Studio account" in unlinked.content.decode()
    assert not LabelStudioAccount.objects.exists()


def test_the_page_says_why_a_token_is_refused(labelstudio, annotator, client_for):
    response = client_for(annotator).post(URL, {"token": "wrong-token-value"})

    assert response.status_code == 400
    assert "Label Studio does not accept that token" in response.content.decode()
    assert "wrong-token-value" not in response.content.decode()
    assert not LabelStudioAccount.objects.exists()


def test_the_page_needs_a_logged_in_user_with_a_role_and_unlink_a_post(db, client, nobody, annotator, client_for):
    assert client.get(URL).status_code == 302
    assert client_for(nobody).get(URL).status_code == 403
    assert client_for(nobody).post(URL, {"token": "x"}).status_code == 403
    assert client_for(annotator).get(f"{URL}unlink/").status_code == 405
    assert not LabelStudioAccount.objects.exists()
