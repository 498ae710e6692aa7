"""The exports API: create (idempotent), list, read, manifest, streamed downloads with ranges, delete, roles."""

import hashlib
import json

import pytest

from exports import services
from exports.models import DatasetExport
from policyhub import services as policy_services


def _auth(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {policy_services.api_token_create(user=user, name='t').raw}"}


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def api(client, engineer):
    auth = _auth(engineer)

    class Api:
        def get(self, url, **headers):
            return client.get(url, **auth, **headers)

        def post(self, url, body, **headers):
            return client.post(url, body, content_type="application/json", **auth, **headers)

        def delete(self, url):
            return client.delete(url, **auth)

    return Api()


@pytest.fixture
def built(export_run, api):
    version = export_run.policy_version
    created = api.post("/api/exports", {"policy": version.policy.slug, "version": version.number,
                                        "runs": [export_run.pk], "split": {"seed": 5}})  # fmt: skip
    assert created.status_code == 202, created.content
    assert created.json()["status"] == "queued" and created.json()["files"] == []
    services.export_build(export_id=created.json()["id"])  # what the worker does
    return DatasetExport.objects.get(pk=created.json()["id"])


def test_create_then_read_the_export_and_its_manifest(built, api):
    export = api.get(f"/api/exports/{built.pk}").json()
    assert export["status"] == "ready" and export["rows_done"] == export["rows_total"] == built.manifest["rows"]
    assert {f["name"] for f in export["files"]} == {"labels.jsonl", "labels.parquet", "openai_chat.jsonl",
                                                    "README.md"}  # fmt: skip
    manifest = api.get(export["manifest_url"]).json()
    assert manifest == built.manifest
    listed = api.get(f"/api/exports?policy={export['policy']}").json()
    assert [e["id"] for e in listed] == [built.pk]
    assert api.get("/api/exports?policy=nope").json() == []


def test_idempotency_key_returns_the_same_export(export_run, api):
    body = {"policy": export_run.policy_version.policy.slug, "version": 1}
    first = api.post("/api/exports", body, HTTP_IDEMPOTENCY_KEY="nightly-1")
    again = api.post("/api/exports", body, HTTP_IDEMPOTENCY_KEY="nightly-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"] and DatasetExport.objects.count() == 1


def test_a_download_streams_the_file_and_a_range_resumes_it(built, api):
    entry = built.file_entry("labels.parquet")
    url = f"/api/exports/{built.pk}/files/labels.parquet"
    whole = api.get(url)
    assert whole.status_code == 200 and whole.streaming  # never loaded in memory as one body
    data = _body(whole)
    assert hashlib.sha256(data).hexdigest() == entry["sha256"] and whole["ETag"] == f'"{entry["sha256"]}"'
    assert whole["Accept-Ranges"] == "bytes"
    # an interrupted download: the first 1000 bytes arrived; resume from there
    rest = api.get(url, HTTP_RANGE="bytes=1000-", HTTP_IF_RANGE=whole["ETag"])
    assert rest.status_code == 206
    assert rest["Content-Range"] == f"bytes 1000-{entry['size'] - 1}/{entry['size']}"
    assert data[:1000] + _body(rest) == data
    middle = api.get(url, HTTP_RANGE="bytes=10-19")
    assert (middle.status_code, _body(middle)) == (206, data[10:20])
    tail = api.get(url, HTTP_RANGE="bytes=-5")
    assert _body(tail) == data[-5:]
    # an If-Range that no longer matches gets the whole file, not a splice of two versions
    stale = api.get(url, HTTP_RANGE="bytes=1000-", HTTP_IF_RANGE='"something-else"')
    assert stale.status_code == 200 and _body(stale) == data
    beyond = api.get(url, HTTP_RANGE=f"bytes={entry['size']}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{entry['size']}"


def test_the_archive_and_the_latest_export_of_a_policy(built, api):
    archive = api.get(f"/api/exports/{built.pk}/archive")
    assert archive.status_code == 200
    assert hashlib.sha256(_body(archive)).hexdigest() == built.archive_sha256
    slug = built.policy_version.policy.slug
    assert api.get(f"/api/policies/{slug}/exports/latest").json()["id"] == built.pk
    latest = api.get(f"/api/policies/{slug}/exports/latest/archive")
    assert hashlib.sha256(_body(latest)).hexdigest() == built.archive_sha256
    labels = _body(api.get(f"/api/policies/{slug}/exports/latest/files/labels.jsonl")).decode()
    assert len(labels.splitlines()) == built.manifest["rows"] and json.loads(labels.splitlines()[0])["split"]
    assert api.get("/api/policies/nope/exports/latest").status_code == 404


def test_errors_are_specific(built, export_run, api):
    slug = export_run.policy_version.policy.slug
    assert api.get("/api/exports/999999").status_code == 404
    missing_file = api.get(f"/api/exports/{built.pk}/files/secrets.txt")
    assert missing_file.status_code == 404 and "no file 'secrets.txt'" in missing_file.json()["detail"]
    traversal = api.get(f"/api/exports/{built.pk}/files/..%2F..%2Fsettings.py")
    assert traversal.status_code == 404
    bad = api.post("/api/exports", {"policy": slug, "version": 1, "split": {"train": 2}})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("train:")
    assert api.post("/api/exports", {"policy": slug, "version": 7}).status_code == 404
    assert api.post("/api/exports", {"policy": slug, "version": 1, "runs": [424242]}).status_code == 404
    draft = api.post("/api/exports", {"policy": slug, "version": 2})
    assert draft.status_code == 400 and "draft" in draft.json()["detail"]
    queued = api.post("/api/exports", {"policy": slug, "version": 1}).json()
    assert api.get(f"/api/exports/{queued['id']}/manifest").status_code == 409
    assert api.get(f"/api/exports/{queued['id']}/files/labels.jsonl").status_code == 409


def test_delete_is_explicit_and_recorded(built, api, engineer):
    deleted = api.delete(f"/api/exports/{built.pk}")
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted" and deleted.json()["deleted_at"]
    assert api.get(f"/api/exports/{built.pk}/files/labels.jsonl").status_code == 409
    built.refresh_from_db()
    assert built.deleted_by == engineer


@pytest.mark.parametrize("role", ["annotator", "owner"])
def test_every_endpoint_is_403_for_other_roles(built, client, request, role):
    auth = _auth(request.getfixturevalue(role))
    slug = built.policy_version.policy.slug
    for url in ["/api/exports", f"/api/exports/{built.pk}", f"/api/exports/{built.pk}/manifest",
                f"/api/exports/{built.pk}/files/labels.jsonl", f"/api/exports/{built.pk}/archive",
                f"/api/policies/{slug}/exports/latest", f"/api/policies/{slug}/exports/latest/archive"]:  # fmt: skip
        assert client.get(url, **auth).status_code == 403, url
    assert client.post("/api/exports", {"policy": slug, "version": 1}, content_type="application/json",
                       **auth).status_code == 403  # fmt: skip
    assert client.delete(f"/api/exports/{built.pk}", **auth).status_code == 403
    assert client.get("/api/exports").status_code == 401
    built.refresh_from_db()
    assert built.status == "ready"
