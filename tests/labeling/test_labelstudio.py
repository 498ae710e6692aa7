"""The Label Studio round trip against a real Label Studio server (tests/labelstudio_server.py): push a run's
needs-review items, annotate them in Label Studio as the annotators would (each with their own API token), pull the
annotations back as reviews."""

from types import SimpleNamespace
from xml.etree import ElementTree

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Candidate, LabelStudioAnnotation, LabelStudioProject, Review, ReviewState
from labeling.services import (
    LabelStudioError,
    LabelStudioNotConfigured,
    labelstudio_pull,
    labelstudio_push,
    review_claim_next,
    review_submit,
)
from labeling.services import labelstudio as labelstudio_service
from labeling.services.labelstudio import label_config
from policyhub import roles
from policyhub import services as policy_services

pytestmark = pytest.mark.labelstudio  # `-m "not labelstudio"` leaves this module out


# --- push ----------------------------------------------------------------------------------------------------
def test_push_creates_a_project_with_the_policy_and_one_task_per_item_with_the_teacher_prediction(
    labelstudio, review_items, published, monkeypatch
):
    monkeypatch.setattr(labelstudio_service, "IMPORT_CHUNK", 2)  # several import requests and listing pages
    monkeypatch.setattr(labelstudio_service, "PAGE_SIZE", 2)
    run = review_items(4, reviewers=2)
    later = Candidate.objects.filter(run=run).order_by("pk").last()
    Candidate.objects.filter(pk=later.pk).update(routing="auto_accepted", review_state="")  # not for review (yet)

    result = labelstudio_push(run=run)

    assert result.created and result.added == 3 and result.already_there == 0
    link = LabelStudioProject.objects.get(run=run)
    assert (link.project_id, link.tasks_total, link.last_push_added) == (result.project_id, 3, 3)
    project = labelstudio.client().projects.get(id=link.project_id)
    config = ElementTree.fromstring(project.label_config)
    choices = {c.get("alias"): c.get("value") for c in config.iter("Choice")}
    assert choices == {label["key"]: label["title"] for label in published.labels}
    assert "<h1>Match policy</h1>" in project.expert_instruction and "Judge from the profile only." in (
        project.expert_instruction
    )
    assert "Seniority differs by at most one level." in project.expert_instruction  # rule R2
    assert project.maximum_annotations == 2

    tasks = labelstudio.tasks(link.project_id)
    pending = set(Candidate.objects.filter(run=run, review_state="pending").values_list("pk", flat=True))
    assert {t.data["candidate_id"] for t in tasks} == pending
    member = Candidate.objects.select_related("pair__member").get(pk=tasks[0].data["candidate_id"]).pair.member
    assert tasks[0].data["member_id"] == member.external_id and member.headline in tasks[0].data["member"]
    for task in tasks:
        (prediction,) = task.predictions
        assert prediction.model_version == "review-fixture + match v1"
        assert prediction.score == pytest.approx(0.5)
        assert prediction.result[0]["value"]["choices"] == ["strong_match"]

    again = labelstudio_push(run=run)
    assert not again.created and again.added == 0 and again.already_there == 3
    assert len(labelstudio.tasks(link.project_id)) == 3

    Candidate.objects.filter(pk=later.pk).update(routing="needs_review", review_state="pending")
    third = labelstudio_push(run=run)
    assert (third.project_id, third.added, third.already_there) == (link.project_id, 1, 3)
    assert len(labelstudio.tasks(link.project_id)) == 4


def test_label_titles_are_escaped_in_the_label_config(labelstudio, owner, review_items):
    labels = [
        {"key": "fit", "title": 'Fit <b>"yes"</b> & more', "definition": "Fits <well>."},
        {"key": "unfit", "title": "Unfit", "definition": "Does not fit."},
    ]
    config = ElementTree.fromstring(label_config(SimpleNamespace(labels=labels)))
    assert [(c.get("value"), c.get("alias"), c.get("hint")) for c in config.iter("Choice")] == [
        ('Fit <b>"yes"</b> & more', "fit", "Fits <well>."),
        ("Unfit", "unfit", "Does not fit."),
    ]
    # and Label Studio accepts it: a run under a published version with these labels gets its project
    policy = policy_services.policy_create(
        slug="odd", name="Odd labels", task_description="Fit?", owner=owner, body="Text.", labels=labels,
        rules=[{"id": "R1", "text": "Judge fairly."}],
    )  # fmt: skip
    version = policy.versions.get(number=1)
    policy_services.policy_version_publish(version=version, user=owner)
    run = review_items(1)
    run.policy_version = version
    run.save(update_fields=["policy_version"])
    Candidate.objects.filter(run=run).update(label="fit")
    link = LabelStudioProject.objects.get(project_id=labelstudio_push(run=run).project_id)
    stored = ElementTree.fromstring(labelstudio.client().projects.get(id=link.project_id).label_config)
    assert [c.get("value") for c in stored.iter("Choice")] == ['Fit <b>"yes"</b> & more', "Unfit"]


# --- pull ----------------------------------------------------------------------------------------------------
def test_pull_applies_annotations_as_reviews_once_and_reports_unknown_annotators(
    labelstudio, labelstudio_link, review_items, annotator, make_user
):
    bea = make_user("bea", roles.ANNOTATOR)
    labelstudio_link(annotator)
    labelstudio_link(bea)
    run = review_items(2, reviewers=2)
    agreed, disputed = Candidate.objects.filter(run=run).order_by("pk")
    project = labelstudio_push(run=run).project_id
    agreed_task, disputed_task = labelstudio.task_id(project, agreed.pk), labelstudio.task_id(project, disputed.pk)

    labelstudio.annotate(annotator.email, agreed_task, "strong_match")
    labelstudio.annotate(bea.email, agreed_task, "strong_match", note="Skills match.")
    labelstudio.annotate(annotator.email, disputed_task, "strong_match")
    labelstudio.annotate(bea.email, disputed_task, "no_match", note="No ICU experience.")
    labelstudio.annotate("stranger@example.com", disputed_task, "partial_match")

    report = labelstudio_pull(run=run)

    assert len(report.applied) == 4 and report.already_imported == 0 and report.skipped == []
    stranger = {"labelstudio_user_id": labelstudio.user_id("stranger@example.com"), "email": "stranger@example.com",
                "annotations": 1}  # fmt: skip
    assert report.unknown_annotators == [stranger]
    agreed.refresh_from_db()
    disputed.refresh_from_db()
    assert (agreed.review_state, agreed.approved_label, agreed.approved_by) == ("done", "strong_match", "reviewers")
    assert (disputed.review_state, disputed.reviews_done, disputed.approved_label) == ("adjudication", 2, "")
    assert Review.objects.get(candidate=disputed, reviewer=bea).note == "No ICU experience."
    assert Review.objects.filter(candidate__run=run).count() == 4

    second = labelstudio_pull(run=run)
    assert second.applied == [] and second.already_imported == 4
    assert second.unknown_annotators == [stranger]
    assert Review.objects.filter(candidate__run=run).count() == 4
    link = LabelStudioProject.objects.get(run=run)
    assert link.last_pull_report["already_imported"] == 4


def test_pull_reports_items_already_done_repeat_reviewers_and_people_without_the_role(
    labelstudio, labelstudio_link, review_items, annotator, make_user, nobody
):
    bea = make_user("bea", roles.ANNOTATOR)
    nobody.groups.add(roles_group(roles.ML_ENGINEER))  # a role to link with, but not the annotator one
    for user in (annotator, bea, nobody):
        labelstudio_link(user)
    run = review_items(2, reviewers=2)
    project = labelstudio_push(run=run).project_id
    first, second = Candidate.objects.filter(run=run).order_by("pk")
    # arjun reviews `first` in the app (1 of 2), then annotates it in Label Studio too
    assert review_claim_next(user=annotator, run_id=run.pk).pk == first.pk
    review_submit(user=annotator, candidate_id=first.pk, label="strong_match")
    labelstudio.annotate(annotator.email, labelstudio.task_id(project, first.pk), "no_match")
    # `second` is finished in the app by the time bea's Label Studio annotation is pulled
    Candidate.objects.filter(pk=second.pk).update(
        review_state="done", approved_label="no_match", approved_by="reviewers"
    )
    labelstudio.annotate(bea.email, labelstudio.task_id(project, second.pk), "strong_match")
    labelstudio.annotate(nobody.email, labelstudio.task_id(project, first.pk), "strong_match")

    report = labelstudio_pull(run=run)

    assert report.applied == []
    reasons = {(row["email"], row["candidate_id"]): row["reason"] for row in report.skipped}
    assert reasons == {
        (annotator.email, first.pk): "this annotator already reviewed the item",
        (bea.email, second.pk): "the item no longer needs a review (already done or in adjudication)",
        (nobody.email, first.pk): "nina does not hold the annotator role in PolicyHub",
    }
    first.refresh_from_db()
    assert (first.reviews_done, first.review_state) == (1, ReviewState.PENDING)
    assert list(Review.objects.filter(candidate=first).values_list("label", flat=True)) == ["strong_match"]
    assert Candidate.objects.get(pk=second.pk).approved_label == "no_match"

    again = labelstudio_pull(run=run)  # the lasting refusals are remembered; the missing role may still be granted
    assert again.already_imported == 2 and [row["email"] for row in again.skipped] == [nobody.email]
    nobody.groups.add(roles_group(roles.ANNOTATOR))
    granted = labelstudio_pull(run=run)
    assert [row["email"] for row in granted.applied] == [nobody.email]
    first.refresh_from_db()  # arjun's in-app review and nina's Label Studio one agree
    assert (first.review_state, first.approved_label, first.reviews_done) == ("done", "strong_match", 2)


def roles_group(name):
    from django.contrib.auth.models import Group

    return Group.objects.get_or_create(name=name)[0]


def test_push_and_pull_need_label_studio_configured_and_pull_needs_a_push(settings, review_items):
    run = review_items(1)
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_KEY = "", ""
    with pytest.raises(LabelStudioNotConfigured, match="LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"):
        labelstudio_push(run=run)
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_KEY = "http://127.0.0.1:9", "key"
    with pytest.raises(LabelStudioError, match="has not been pushed to Label Studio yet"):
        labelstudio_pull(run=run)
    with pytest.raises(LabelStudioError, match="Could not reach Label Studio at http://127.0.0.1:9"):
        labelstudio_push(run=run)
    assert not LabelStudioProject.objects.exists() and not LabelStudioAnnotation.objects.exists()


def test_management_command_pushes_and_pulls(labelstudio, labelstudio_link, review_items, annotator, capsys):
    labelstudio_link(annotator)
    run = review_items(1)
    call_command("labelstudio", "push", "--run", str(run.pk))
    assert "1 new task" in capsys.readouterr().out
    project = LabelStudioProject.objects.get(run=run).project_id
    labelstudio.annotate(annotator.email, labelstudio.task_id(project, run.candidates.get().pk), "no_match")
    call_command("labelstudio", "pull", "--run", str(run.pk))
    assert "1 applied, 0 already imported" in capsys.readouterr().out
    assert run.candidates.get().approved_label == "no_match"
    with pytest.raises(CommandError, match="No run #999999"):
        call_command("labelstudio", "pull", "--run", "999999")
    labelstudio.client().projects.delete(id=project)
    with pytest.raises(CommandError, match=f"Label Studio project #{project} of run #{run.pk} no longer exists"):
        call_command("labelstudio", "push", "--run", str(run.pk))


def test_a_run_with_nothing_waiting_for_review_gets_no_project(labelstudio, review_items):
    run = review_items(1)
    run.candidates.update(review_state="done", approved_label="strong_match", approved_by="reviewers")
    with pytest.raises(LabelStudioError, match="has no items waiting for review: there is nothing to push"):
        labelstudio_push(run=run)
    assert not LabelStudioProject.objects.exists()


# --- the run page and the API --------------------------------------------------------------------------------
def test_run_page_buttons_push_and_pull_and_show_the_report(labelstudio, review_items, engineer, owner, client_for):
    run = review_items(2)
    page = client_for(engineer).get(f"/runs/{run.pk}/")
    assert b"Push to Label Studio" in page.content and b"Pull annotations" not in page.content

    pushed = client_for(engineer).post(f"/runs/{run.pk}/labelstudio/push/", follow=True)
    link = LabelStudioProject.objects.get(run=run)
    assert f"Created Label Studio project #{link.project_id}: 2 new tasks".encode() in pushed.content
    assert link.url.encode() in pushed.content and b"Pull annotations" in pushed.content

    labelstudio.annotate("someone@else.example", labelstudio.task_id(link.project_id, run.candidates.first().pk),
             "no_match")  # fmt: skip
    pulled = client_for(owner).post(f"/runs/{run.pk}/labelstudio/pull/", follow=True)
    assert pulled.status_code == 200
    assert b"0 applied, 0 already imported, 0 skipped" in pulled.content
    assert b"someone@else.example" in pulled.content
    assert b"Annotations by Label Studio users not linked to PolicyHub" in pulled.content
    assert f"<td>#{labelstudio.user_id('someone@else.example')}</td>".encode() in pulled.content
    assert b"Cancel run" not in pulled.content  # run actions stay with the ML engineers


def test_run_page_says_when_label_studio_is_not_configured(settings, review_items, engineer, client_for):
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_KEY = "", ""
    run = review_items(1)
    response = client_for(engineer).post(f"/runs/{run.pk}/labelstudio/push/", follow=True)
    assert b"Label Studio is not configured: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY" in response.content
    assert not LabelStudioProject.objects.exists()


@pytest.mark.parametrize("action", ["push", "pull"])
def test_buttons_need_ml_engineer_or_policy_owner_and_post(action, review_items, annotator, nobody, client, client_for):
    run = review_items(1)
    url = f"/runs/{run.pk}/labelstudio/{action}/"
    assert client.post(url).status_code == 302  # anonymous: to the login page
    assert client_for(annotator).post(url).status_code == 403
    assert client_for(nobody).post(url).status_code == 403
    assert client_for(annotator).get(f"/runs/{run.pk}/").status_code == 403
    assert not LabelStudioProject.objects.exists()


def test_api_push_pull_and_status_with_roles(
    labelstudio, labelstudio_link, settings, review_items, engineer, owner, annotator, client
):
    labelstudio_link(annotator)
    run = review_items(1)
    auth = {role: {"HTTP_AUTHORIZATION": f"Bearer {policy_services.api_token_create(user=user, name='t').raw}"}
            for role, user in (("engineer", engineer), ("owner", owner), ("annotator", annotator))}  # fmt: skip
    base = f"/api/runs/{run.pk}/labelstudio"
    assert client.post(f"{base}/push", **auth["annotator"]).status_code == 403
    assert client.get(base, **auth["annotator"]).status_code == 403
    assert client.post(f"{base}/pull", **auth["owner"]).json() == {
        "detail": f"Run #{run.pk} has not been pushed to Label Studio yet: push it first."
    }
    pushed = client.post(f"{base}/push", **auth["engineer"])
    assert pushed.status_code == 200 and pushed.json()["added"] == 1 and pushed.json()["created"] is True
    project = pushed.json()["project_id"]
    labelstudio.annotate(annotator.email, labelstudio.task_id(project, run.candidates.get().pk), "partial_match")
    pulled = client.post(f"{base}/pull", **auth["owner"])
    assert pulled.status_code == 200
    assert [(row["email"], row["label"], row["review_state"]) for row in pulled.json()["applied"]] == [
        (annotator.email, "partial_match", "done")
    ]
    status = client.get(base, **auth["owner"]).json()
    assert status["project_id"] == project and len(status["last_pull_report"]["applied"]) == 1
    assert client.post("/api/runs/999999/labelstudio/push", **auth["engineer"]).status_code == 404
    settings.LABEL_STUDIO_URL = ""
    unset = client.post(f"{base}/push", **auth["engineer"])
    assert unset.status_code == 503 and "LABEL_STUDIO_URL" in unset.json()["detail"]
