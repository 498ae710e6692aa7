"""Object storage down (the moto server stopped: connections refused): downloads, export creation and uploads
answer 503 with the reason, in the API (JSON) and on the pages, never a 500; a build is retried while the store is
down, publishes nothing (what it uploaded before the store went down is deleted by the watchdog once the store is
back), and succeeds once it is back, or, if it stays down, fails with the reason. The bucket is a
real server (moto in server mode, ``tests/s3_server.py``), stopped and started again on the same port."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from exports import services, tasks
from exports import storage as export_storage
from exports.models import DatasetExport
from labeling.models import ImportBatch
from policyhub import services as policy_services
from tests.s3_server import s3_outage_fixture  # noqa: F401 - fixtures


def _get(client, token, url, **headers):
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def token(engineer):
    return policy_services.api_token_create(user=engineer, name="outage").raw


@pytest.mark.django_db
@pytest.mark.parametrize("downloads", ["stream", "redirect"])
def test_downloads_answer_503_with_the_reason_while_the_store_is_down(
    export_run, engineer, client, s3_outage, settings, token, downloads
):
    server, bucket = s3_outage
    settings.EXPORT_DOWNLOADS = downloads
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    export = services.export_build(export_id=export.pk)
    assert export.status == "ready"
    server.stop()

    for url in (f"/api/exports/{export.pk}/archive", f"/api/exports/{export.pk}/files/labels.jsonl",
                f"/api/policies/{export_run.policy_version.policy.slug}/exports/latest/archive"):  # fmt: skip
        response = _get(client, token, url)
        assert response.status_code == 503, url
        detail = response.json()["detail"]
        assert "cannot be read: the object store holding s3://" in detail and "unavailable right now" in detail
        assert "try again later" in detail and "Traceback" not in detail
    client.force_login(engineer)
    page = client.get(f"/exports/{export.pk}/files/labels.jsonl")
    assert page.status_code == 503 and page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    assert 'id="storage-unavailable"' in text and "is unavailable right now" in text
    detail_page = client.get(f"/exports/{export.pk}/")  # the page itself still works and says why the card is missing
    assert detail_page.status_code == 200 and "unavailable right now" in detail_page.content.decode()
    export.refresh_from_db()
    assert export.status == "ready"  # an outage is not tampering: the export is left as it is

    server.start()
    settings.EXPORT_DOWNLOADS = "stream"
    again = _get(client, token, f"/api/exports/{export.pk}/archive")
    assert again.status_code == 200 and hashlib.sha256(_body(again)).hexdigest() == export.archive_sha256


@pytest.mark.django_db
def test_creating_an_export_while_the_store_is_down_answers_503_and_queues_nothing(
    export_run, engineer, client, s3_outage, token
):
    server, _bucket = s3_outage
    server.stop()
    version = export_run.policy_version
    payload = {"policy": version.policy.slug, "version": version.number, "runs": [export_run.pk]}
    response = client.post("/api/exports", payload, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert response.status_code == 503
    assert response.json()["detail"].startswith("storage: No export was queued: the object store holding s3://")
    client.force_login(engineer)
    page = client.post("/exports/new/", {"version": version.pk, "runs": [export_run.pk], "train": 0.8,
                                         "validation": 0.1, "test": 0.1, "seed": 1, "approved_only": "on"})  # fmt: skip
    assert page.status_code == 503 and "No export was queued" in page.content.decode()
    assert not DatasetExport.objects.exists()

    server.start()
    created = client.post("/api/exports", payload, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert created.status_code == 202


@pytest.mark.django_db
def test_a_build_while_the_store_is_down_publishes_nothing_and_succeeds_when_retried_after(
    export_run, engineer, s3_outage
):
    server, bucket = s3_outage
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    server.stop()
    # the task retries a ConnectionError (policyhub.jobs.TRANSIENT_ERRORS): this is its first try
    with pytest.raises(export_storage.StorageUnavailable, match="unavailable right now"):
        services.export_build(export_id=export.pk)
    export.refresh_from_db()
    assert (export.status, export.storage_key, export.lease_token) == ("queued", "", "")  # free for the retry
    assert not any(services.exports_root().glob(f".staging-{export.pk}"))  # nothing half-built left behind

    server.start()
    export = services.export_build(export_id=export.pk)  # the retry, the store back
    assert (export.status, export.error) == ("ready", "")
    assert services.export_verify(export=export) == []
    assert len(bucket.keys(f"exports/{export.pk}/")) == len(export.files) + 2  # + manifest and archive


@pytest.mark.django_db
def test_a_build_whose_store_stays_down_fails_with_the_reason_after_its_retries(export_run, engineer, s3_outage):
    server, bucket = s3_outage
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    server.stop()
    outcome = tasks.export_build_task.apply((export.pk,))  # as a worker runs it: retries, then its failure hook
    assert outcome.failed() and tasks.export_build_task.max_retries == 5
    export.refresh_from_db()
    assert export.status == "failed" and export.finished_at
    assert export.error.startswith("StorageUnavailable: the object store holding s3://")
    assert "unavailable right now" in export.error and "try again later" in export.error
    server.start()
    assert bucket.keys(f"exports/{export.pk}/") == []  # nothing was published


@pytest.mark.django_db
def test_an_upload_while_the_store_is_down_answers_503_with_the_reason(engineer, client, s3_outage, token):
    server, bucket = s3_outage
    server.stop()
    upload = SimpleUploadedFile("members.csv", b"member_id,headline\nm1,Nurse\n", content_type="text/csv")
    response = client.post("/api/imports", {"kind": "members", "file": upload}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "the upload could not be stored for the workers; nothing was imported" in detail
    assert "Could not connect to the endpoint URL" in detail
    client.force_login(engineer)
    again = SimpleUploadedFile("members2.csv", b"member_id,headline\nm2,Cook\n", content_type="text/csv")
    page = client.post("/imports/", {"kind": "members", "file": again})
    assert page.status_code == 503 and "could not be stored for the workers" in page.content.decode()
    assert set(ImportBatch.objects.values_list("status", "stored_file")) == {("failed", "")}
    server.start()
    assert bucket.keys("imports/") == []


@pytest.mark.django_db
def test_an_import_whose_worker_finds_the_store_down_is_retried_and_imports_once_it_is_back(
    engineer, s3_outage, monkeypatch
):
    from labeling import tasks as labeling_tasks
    from labeling.models import Member
    from labeling.services import import_upload_enqueue

    server, bucket = s3_outage
    upload = SimpleUploadedFile("members.csv", b"member_id,headline\nm1,Nurse\n", content_type="text/csv")
    batch = import_upload_enqueue(kind="members", upload=upload, user=engineer).batch  # stored while the store is up
    server.stop()
    tries = []
    real = labeling_tasks.services.import_stored_run

    def first_try_while_down(**kwargs):
        tries.append(kwargs)
        try:
            return real(**kwargs)
        finally:
            if len(tries) == 1:
                server.start()  # the store is back before the task's retry

    monkeypatch.setattr(labeling_tasks.services, "import_stored_run", first_try_while_down)
    outcome = labeling_tasks.import_batch_process.apply((batch.pk,))  # as a worker runs it, retries included
    assert outcome.successful() and len(tries) == 2  # the outage cost a retry, not the import
    batch.refresh_from_db()
    assert (batch.status, batch.rows_created, batch.stored_file) == ("succeeded", 1, "")
    assert Member.objects.filter(external_id="m1").exists() and bucket.keys("imports/") == []


@pytest.mark.django_db
def test_a_build_whose_store_goes_down_mid_upload_leaves_its_uploaded_objects_to_the_watchdog(
    export_run, engineer, s3_outage, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from labeling.models import PendingStorageDeletion
    from labeling.services import storage_deletions_retry
    from policyhub.leases import Sweep

    server, bucket = s3_outage
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    real = export_storage._sha256_of

    def read_back_then_lose_the_store(chunks):
        got = real(chunks)
        server.stop()  # the first file is uploaded and verified; the store goes down before the next
        return got

    monkeypatch.setattr(export_storage, "_sha256_of", read_back_then_lose_the_store)
    with pytest.raises(export_storage.StorageUnavailable, match="unavailable right now"):
        services.export_build(export_id=export.pk)
    monkeypatch.setattr(export_storage, "_sha256_of", real)
    pending = PendingStorageDeletion.objects.get()  # the one object it could not take back
    assert pending.storage == "exports" and pending.name.startswith(f"{export.pk}/")

    server.start()
    assert bucket.keys(f"exports/{export.pk}/") == [f"ph/exports/{pending.name}"]
    later = Sweep(now=timezone.now() + timedelta(minutes=5), queue_idle=True)
    assert storage_deletions_retry(sweep=later) == 1
    assert bucket.keys(f"exports/{export.pk}/") == [] and not PendingStorageDeletion.objects.exists()
    export.refresh_from_db()
    assert (export.storage_key, export.lease_token) == ("", "")  # nothing published; free for the task's retry
