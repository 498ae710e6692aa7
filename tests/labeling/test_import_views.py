"""Uploading in the browser and through the API (the worker step runs in-process here: the task is thin and
the real-worker path is covered by test_import_bad_text_and_caps.py and test_task_failures_worker.py)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import ImportBatch, Member
from labeling.tasks import import_batch_process
from policyhub import services as policy_services

from .conftest import MEMBERS_CSV


def upload(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


@pytest.mark.parametrize(("who", "expected"), [("annotator", 403), ("owner", 403), ("nobody", 403), ("engineer", 200)])
def test_only_ml_engineers_can_open_the_import_page(db, request, client_for, who, expected):
    response = client_for(request.getfixturevalue(who)).get("/imports/")
    assert response.status_code == expected


def test_anonymous_users_are_sent_to_login(client):
    response = client.get("/imports/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_an_annotator_cannot_upload_and_nothing_is_recorded(annotator, client_for):
    response = client_for(annotator).post("/imports/", {"kind": "members", "file": upload("m.csv", MEMBERS_CSV)})
    assert response.status_code == 403
    assert ImportBatch.objects.count() == 0


def test_engineer_upload_is_queued_then_imported_and_the_page_shows_the_result(
    engineer, client_for, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    client = client_for(engineer)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/imports/", {"kind": "members", "file": upload("members.csv", MEMBERS_CSV)})
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and response.url == f"/imports/{batch.pk}/"
    assert batch.status == "queued" and batch.created_by == engineer
    page = client.get(response.url)
    assert b"Waiting for a worker" in page.content and b'hx-trigger="every 1s"' in page.content

    assert len(callbacks) == 1
    import_batch_process(batch.pk)  # what the worker runs
    batch.refresh_from_db()
    assert batch.status == "succeeded" and batch.stored_file == ""
    assert Member.objects.count() == 2
    assert list(tmp_path.rglob("*.*")) == []  # the upload is removed once imported
    fragment = client.get(response.url, HTTP_HX_REQUEST="true")
    assert b"2 created, 0 already present" in fragment.content and b"every 1s" not in fragment.content


def test_a_bad_upload_lists_every_bad_row_escaped(engineer, client_for, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = client_for(engineer)
    bad = "member_id,headline,skills,seniority,location,summary\nm1,,,,,\nm2,<b>x</b>,,<i>boss</i>,,\n"
    response = client.post("/imports/", {"kind": "members", "file": upload("bad.csv", bad)})
    import_batch_process(ImportBatch.objects.get().pk)
    page = client.get(response.url).content.decode()
    assert "2 bad rows: nothing was imported" in page
    assert '<td>2</td><td class="mono">headline</td><td>missing value</td>' in page
    assert "&#x27;&lt;i&gt;boss&lt;/i&gt;&#x27; is not one of" in page
    assert Member.objects.count() == 0


def test_api_upload_poll_and_reimport(engineer, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    token = policy_services.api_token_create(user=engineer, name="pipeline").raw
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = client.post("/api/imports", {"kind": "members", "file": upload("m.csv", MEMBERS_CSV)}, **auth)
    assert response.status_code == 202
    batch_id = response.json()["id"]
    import_batch_process(batch_id)
    status = client.get(f"/api/imports/{batch_id}", **auth).json()
    assert (status["status"], status["rows_created"], status["errors"]) == ("succeeded", 2, [])

    again = client.post("/api/imports", {"kind": "members", "file": upload("again.csv", MEMBERS_CSV)}, **auth)
    assert again.status_code == 200 and again.json()["already_imported"] is True
    assert again.json()["id"] == batch_id

    wrong_kind = client.post("/api/imports", {"kind": "people", "file": upload("m.csv", MEMBERS_CSV)}, **auth)
    assert wrong_kind.status_code == 400 and "kind must be one of" in wrong_kind.json()["detail"]
    assert client.get("/api/imports/999999", **auth).status_code == 404


def test_api_refuses_other_roles(annotator, client):
    token = policy_services.api_token_create(user=annotator, name="t").raw
    response = client.post(
        "/api/imports",
        {"kind": "members", "file": upload("m.csv", MEMBERS_CSV)},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 403
    assert ImportBatch.objects.count() == 0
