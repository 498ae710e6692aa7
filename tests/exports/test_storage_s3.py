"""Exports in an S3-compatible bucket (``STORAGE_BACKEND=s3``): built by a real Celery worker into the bucket,
downloaded through the app whole and resumed with ranges, or by a presigned URL; never overwritten; a changed
object is refused. The bucket is a real server (moto in server mode, ``tests/s3_server.py``)."""

import hashlib
import io
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import CommandError, call_command

from exports import services
from exports import storage as export_storage
from exports.models import DatasetExport
from labeling.models import Candidate
from policyhub import services as policy_services
from tests.celery_worker import Worker, purge_queue, table_locked, worker_database_url
from tests.s3_server import PREFIX, s3_fixture, s3_server_fixture  # noqa: F401 - fixtures

NAMES = ("labels.jsonl", "labels.parquet", "openai_chat.jsonl", "README.md", "manifest.json")


def _get(client, token, url, **headers):
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _objects(s3, export) -> dict[str, dict]:
    return {key: s3.head(key) for key in s3.keys(f"exports/{export.pk}/")}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_export_built_on_a_worker_lives_in_the_bucket_and_downloads_resume_with_ranges(
    export_run,
    engineer,
    client,
    s3,
    tmp_path,
):
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env=s3.env).start()
    try:
        export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
        worker.wait_for(lambda: not DatasetExport.objects.get(pk=export.pk).is_active, "the build to end")
    finally:
        worker.stop()
    export.refresh_from_db()
    assert (export.status, export.error) == ("ready", "")
    build = export.storage_key.split("/")[1]
    assert export.storage_key == f"{export.pk}/{build}" and len(build) == 32
    expected = sorted(f"{PREFIX}/exports/{export.pk}/{build}/{name}" for name in (*NAMES, export.archive_name))
    assert s3.keys(f"exports/{export.pk}/") == expected
    assert not (tmp_path / "worker-build").exists() or not any((tmp_path / "worker-build").iterdir())  # cleaned up
    for entry in export.manifest["files"]:  # the bucket holds exactly what the manifest lists
        key = f"{PREFIX}/exports/{export.storage_key}/{entry['name']}"
        assert (s3.sha256(key), s3.head(key)["ContentLength"]) == (entry["sha256"], entry["size"])

    token = policy_services.api_token_create(user=engineer, name="dl").raw
    url = f"/api/exports/{export.pk}/archive"
    whole = _get(client, token, url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert whole["ETag"] == f'"{export.archive_sha256}"' and int(whole["Content-Length"]) == export.archive_size
    assert f'filename="{export.archive_name}"' in whole["Content-Disposition"]
    archive = _body(whole)
    assert hashlib.sha256(archive).hexdigest() == export.archive_sha256

    # an interrupted download resumed as curl -C - does, then as a browser does with If-Range
    cut = export.archive_size // 3
    first = _get(client, token, url, HTTP_RANGE=f"bytes=0-{cut - 1}")
    assert first.status_code == 206 and first["Content-Range"] == f"bytes 0-{cut - 1}/{export.archive_size}"
    rest = _get(client, token, url, HTTP_RANGE=f"bytes={cut}-", HTTP_IF_RANGE=whole["ETag"])
    assert rest.status_code == 206 and rest["Content-Range"] == f"bytes {cut}-{export.archive_size - 1}/" + str(
        export.archive_size
    )
    assert int(rest["Content-Length"]) == export.archive_size - cut
    assert hashlib.sha256(_body(first) + _body(rest)).hexdigest() == export.archive_sha256
    tail = _get(client, token, url, HTTP_RANGE="bytes=-100")
    assert tail.status_code == 206 and _body(tail) == archive[-100:]
    stale = _get(client, token, url, HTTP_RANGE=f"bytes={cut}-", HTTP_IF_RANGE='"an-older-copy"')
    assert stale.status_code == 200 and hashlib.sha256(_body(stale)).hexdigest() == export.archive_sha256
    beyond = _get(client, token, url, HTTP_RANGE=f"bytes={export.archive_size}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{export.archive_size}"

    for entry in export.manifest["files"]:  # every file by itself, with its checksum
        response = _get(client, token, f"/api/exports/{export.pk}/files/{entry['name']}")
        assert response.status_code == 200 and hashlib.sha256(_body(response)).hexdigest() == entry["sha256"]
    manifest = _get(client, token, f"/api/exports/{export.pk}/files/manifest.json")
    assert manifest.status_code == 200 and b'"files"' in _body(manifest)
    client.force_login(engineer)
    page = client.get(f"/exports/{export.pk}/").content.decode()
    assert 'id="dataset-card"' in page and "<h1>" in page.split('id="dataset-card"')[1]  # the card, read from S3
    assert services.export_verify(export=export) == []


@pytest.mark.django_db
def test_presigned_redirect_sends_the_client_to_the_bucket_for_a_short_while(
    export_run,
    engineer,
    client,
    s3,
    settings,
):
    settings.EXPORT_DOWNLOADS, settings.EXPORT_DOWNLOAD_URL_SECONDS = "redirect", 120
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    export = services.export_build(export_id=export.pk)
    token = policy_services.api_token_create(user=engineer, name="dl").raw
    response = _get(client, token, f"/api/policies/{export_run.policy_version.policy.slug}/exports/latest/archive")
    assert response.status_code == 302 and response["Cache-Control"] == "private, no-store"
    location = response["Location"]
    assert location.startswith(f"{s3.endpoint}/{s3.name}/{PREFIX}/exports/{export.storage_key}/")
    query = parse_qs(urlparse(location).query)
    assert query["X-Amz-Expires"] == ["120"] and "X-Amz-Signature" in query
    with urllib.request.urlopen(location, timeout=10) as got:  # the client follows it, with no credentials of its own
        data = got.read()
        assert f'filename="{export.archive_name}"' in got.headers["Content-Disposition"]
    assert hashlib.sha256(data).hexdigest() == export.archive_sha256
    ranged = urllib.request.Request(location, headers={"Range": "bytes=100-"})  # curl -L -C - resumes there
    with urllib.request.urlopen(ranged, timeout=10) as got:
        assert got.status == 206 and got.read() == data[100:]
    # If-Range carries this app's ETag, which the bucket does not know: the app answers it itself
    here = _get(client, token, f"/api/exports/{export.pk}/archive", HTTP_RANGE="bytes=100-",
                HTTP_IF_RANGE=f'"{export.archive_sha256}"')  # fmt: skip
    assert here.status_code == 206 and _body(here) == data[100:]


@pytest.mark.django_db
def test_a_built_export_is_never_overwritten(export_run, engineer, s3):
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    export = services.export_build(export_id=export.pk)
    before = _objects(s3, export)
    assert len(before) == len(NAMES) + 1

    # a re-delivered task for the built export writes nothing
    DatasetExport.objects.filter(pk=export.pk).update(lease_until=None)
    again = services.export_build(export_id=export.pk)
    assert again.storage_key == export.storage_key
    after = _objects(s3, export)
    assert {k: (v["ETag"], v["LastModified"]) for k, v in after.items()} == {
        k: (v["ETag"], v["LastModified"]) for k, v in before.items()
    }

    # a second export of the same recipe gets keys of its own; the first's objects stay as they were
    second, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    second = services.export_build(export_id=second.pk)
    assert second.storage_key.split("/")[0] == str(second.pk) != str(export.pk)
    assert second.manifest["files"][0]["sha256"] == export.manifest["files"][0]["sha256"]  # same labels
    assert {k: v["ETag"] for k, v in _objects(s3, export).items()} == {k: v["ETag"] for k, v in before.items()}

    # publishing to a key that holds an object refuses and leaves that object alone
    storage = export_storage.exports_storage()
    key = next(iter(before))
    existing = s3.get(key)
    staging = services.exports_root() / "again"
    staging.mkdir(parents=True)
    name = key.rsplit("/", 1)[1]
    (staging / name).write_bytes(b"something else")
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_storage.publish(storage, staging, export.storage_key, {name: ("0" * 64, 14)})
    assert s3.get(key) == existing


@pytest.mark.django_db
def test_a_rebuild_after_a_dead_build_writes_new_keys_and_drops_the_dead_ones(export_run, engineer, s3):
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    dead = f"{PREFIX}/exports/{export.pk}/{'d' * 32}"
    s3.put(f"{dead}/labels.jsonl", b'{"half": "written"')  # a worker died mid-upload: the export never pointed here
    built = services.export_build(export_id=export.pk)
    assert built.status == "ready" and not built.storage_key.endswith("d" * 32)
    assert not [key for key in s3.keys(f"exports/{export.pk}/") if key.startswith(dead)]
    assert services.export_verify(export=built) == []


@pytest.mark.django_db
def test_a_failed_upload_leaves_no_object_and_fails_the_export(export_run, engineer, s3, monkeypatch):
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    storage_class = type(export_storage.exports_storage())
    real_save, saved = storage_class.save, []

    def save_then_break(self, name, content, max_length=None):  # the bucket refuses the fourth object
        if len(saved) == 3:
            raise PermissionError("the bucket refused the object")
        saved.append(name)
        return real_save(self, name, content, max_length)

    monkeypatch.setattr(storage_class, "save", save_then_break)
    failed = services.export_build(export_id=export.pk)
    assert failed.status == "failed" and "PermissionError: the bucket refused the object" in failed.error
    assert len(saved) == 3 and s3.keys(f"exports/{export.pk}/") == []  # the three it had stored are gone again
    assert failed.storage_key == "" and not list(services.exports_root().glob(".staging-*"))


@pytest.mark.django_db
def test_a_changed_object_is_refused_not_served(export_run, engineer, client, s3, settings):
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    export = services.export_build(export_id=export.pk)
    key = f"{PREFIX}/exports/{export.storage_key}/labels.jsonl"
    original = s3.get(key)
    changed = bytearray(original)
    changed[10] ^= 1  # one bit, same size: only the ETag and the sha256 can tell
    s3.put(key, bytes(changed))
    token = policy_services.api_token_create(user=engineer, name="dl").raw
    for headers in ({}, {"HTTP_RANGE": "bytes=0-99"}):
        response = _get(client, token, f"/api/exports/{export.pk}/files/labels.jsonl", **headers)
        assert response.status_code == 409
        assert "was changed after the export was built: its ETag is" in response.json()["detail"]
    settings.EXPORT_DOWNLOADS = "redirect"
    assert _get(client, token, f"/api/exports/{export.pk}/files/labels.jsonl").status_code == 409  # no URL to it
    client.force_login(engineer)
    page_download = client.get(f"/exports/{export.pk}/files/labels.jsonl")
    assert page_download.status_code == 409 and b"was changed after the export was built" in page_download.content
    problems = services.export_verify(export=export)
    assert len(problems) == 1 and "labels.jsonl" in problems[0]
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 export"):
        call_command("export_verify", str(export.pk), stderr=err)
    assert f"export #{export.pk}: " in err.getvalue() and "labels.jsonl was changed" in err.getvalue()
    assert _get(client, token, f"/api/exports/{export.pk}/archive").status_code == 302  # the untouched ones still go
    s3.client.delete_object(Bucket=s3.name, Key=f"{PREFIX}/exports/{export.storage_key}/labels.parquet")
    gone = _get(client, token, f"/api/exports/{export.pk}/files/labels.parquet")
    assert gone.status_code == 409 and "labels.parquet is missing" in gone.json()["detail"]


@pytest.mark.django_db
def test_a_build_that_lost_its_lease_publishes_nothing(export_run, engineer, s3, monkeypatch):
    """A worker that stalled past its lease while another took the export over uploads its files, then finds the
    export is no longer its own: it removes what it uploaded and leaves the export to the other build."""
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    real_publish = export_storage.publish

    def publish_then_lose_the_lease(storage, staging, key, files):
        etags = real_publish(storage, staging, key, files)
        assert len(s3.keys(f"exports/{export.pk}/")) == len(files)  # uploaded and verified
        DatasetExport.objects.filter(pk=export.pk).update(lease_token="another-worker")  # it claimed the export
        return etags

    monkeypatch.setattr(export_storage, "publish", publish_then_lose_the_lease)
    stalled = services.export_build(export_id=export.pk)
    assert (stalled.status, stalled.storage_key, stalled.manifest) == ("building", "", {})
    assert s3.keys(f"exports/{export.pk}/") == []
    monkeypatch.setattr(export_storage, "publish", real_publish)
    DatasetExport.objects.filter(pk=export.pk).update(lease_token="", lease_until=None)  # the other one's lease ran out
    built = services.export_build(export_id=export.pk)
    assert built.status == "ready" and services.export_verify(export=built) == []


@pytest.mark.django_db
def test_deleting_an_export_removes_its_objects_and_keeps_the_record(export_run, engineer, client, s3):
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    export = services.export_build(export_id=export.pk)
    assert len(s3.keys(f"exports/{export.pk}/")) == len(NAMES) + 1
    token = policy_services.api_token_create(user=engineer, name="dl").raw
    response = client.delete(f"/api/exports/{export.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json()["status"] == "deleted"
    assert s3.keys(f"exports/{export.pk}/") == []
    assert _get(client, token, f"/api/exports/{export.pk}/archive").status_code == 409


LEASE = 4


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_export_whose_worker_died_mid_upload_is_built_again_by_the_watchdog(export_run, engineer, s3, tmp_path):
    """Real workers with beat: the first is killed while its build waits (its lease renewed), after it "uploaded"
    part of a build (an object under a build key of its own); the watchdog hands the export to a second worker,
    which builds it under a new key, removes the dead build's object and verifies every file."""
    env = {**s3.env, "WORK_LEASE_SECONDS": str(LEASE)}
    purge_queue()
    first = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True).start()
    second = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True)
    try:
        with table_locked(Candidate):
            export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
            first.wait_for(lambda: DatasetExport.objects.get(pk=export.pk).status == "building", "the build")
            dead = DatasetExport.objects.get(pk=export.pk).lease_token
            s3.put(f"{PREFIX}/exports/{export.pk}/{dead}/labels.jsonl", b'{"half":')
            first.kill()
        second.start()
        second.wait_for(lambda: DatasetExport.objects.get(pk=export.pk).status == "ready", "the rebuild", timeout=60)
    finally:
        first.stop()
        second.stop()
    export.refresh_from_db()
    assert export.recoveries == 1 and export.error == "" and dead not in export.storage_key
    assert all(f"/{dead}/" not in key for key in s3.keys(f"exports/{export.pk}/"))
    assert len(s3.keys(f"exports/{export.pk}/")) == len(NAMES) + 1
    assert services.export_verify(export=export) == []
