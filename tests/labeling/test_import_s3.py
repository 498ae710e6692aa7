"""Uploads in an S3-compatible bucket (``STORAGE_BACKEND=s3``): the web process stores the file in the bucket, a
worker on another "machine" (its own folders, nothing shared but the bucket, the database and the broker) reads it
from there, also when the watchdog hands the import to a second worker after the first was killed mid-way. A bucket
that refuses the upload fails the import with the reason (503), nothing queued. The bucket is a real server (moto
in server mode, ``tests/s3_server.py``)."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from labeling.models import ImportBatch, Member
from policyhub import services as policy_services
from policyhub.settings import s3_storages
from tests.celery_worker import Worker, purge_queue, table_locked, worker_database_url
from tests.s3_server import PREFIX, s3_fixture, s3_server_fixture  # noqa: F401 - fixtures

LEASE = 4
ROWS = 300


def _batch(batch_id: int) -> ImportBatch:
    return ImportBatch.objects.get(pk=batch_id)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_upload_goes_through_the_bucket_to_the_worker_and_survives_a_killed_worker(engineer, s3, tmp_path):
    env = {**s3.env, "WORK_LEASE_SECONDS": str(LEASE), "LABELING_CHUNK_LEASE_SECONDS": str(LEASE)}
    text = "member_id,headline,skills\n" + "".join(f"m{i},Engineer {i},Python\n" for i in range(ROWS))
    token = policy_services.api_token_create(user=engineer, name="up").raw
    api = Client()
    purge_queue()
    first = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True).start()
    second = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True)
    try:
        with table_locked(Member):  # the first worker's import waits here, mid-way, until it is killed
            upload = SimpleUploadedFile("members.csv", text.encode(), content_type="text/csv")
            response = api.post(
                "/api/imports", {"kind": "members", "file": upload}, HTTP_AUTHORIZATION=f"Bearer {token}"
            )
            assert response.status_code == 202, response.content
            batch_id = response.json()["id"]
            stored = _batch(batch_id).stored_file
            assert stored.startswith("imports/") and s3.keys("imports/") == [f"{PREFIX}/{stored}"]
            assert s3.get(f"{PREFIX}/{stored}") == text.encode()  # all of it, in the bucket
            assert not (tmp_path / "web-media").exists()  # and nothing on this machine's disk
            first.wait_for(lambda: _batch(batch_id).status == "running", "the import to start")
            time.sleep(LEASE)
            first.kill()
        second.start()
        second.wait_for(lambda: _batch(batch_id).status == "succeeded", "the import to finish", timeout=60)
    finally:
        first.stop()
        second.stop()
    batch = _batch(batch_id)
    assert (batch.rows_created, batch.error_count, batch.recoveries) == (ROWS, 0, 1)
    assert Member.objects.count() == ROWS and Member.objects.filter(external_id=f"m{ROWS - 1}").exists()
    assert batch.stored_file == "" and s3.keys("imports/") == []  # the worker removed the upload once imported
    assert not (tmp_path / "worker-media").exists()  # the workers never needed a shared folder


@pytest.mark.django_db
def test_an_upload_the_bucket_refuses_fails_the_import_with_the_reason(engineer, client, s3, s3_server, settings):
    settings.STORAGES = {**settings.STORAGES, **s3_storages(bucket="no-such-bucket", endpoint_url=s3_server,
                                                            access_key="testing", secret_key="testing-secret",
                                                            region="us-east-1", addressing_style="path")}  # fmt: skip
    token = policy_services.api_token_create(user=engineer, name="up").raw
    upload = SimpleUploadedFile("members.csv", b"member_id,headline\nm1,Nurse\n", content_type="text/csv")
    response = client.post("/api/imports", {"kind": "members", "file": upload}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "the upload could not be stored for the workers; nothing was imported" in detail and "NoSuchBucket" in detail
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.stored_file, batch.errors[0]["line"], batch.errors[0]["field"]) == (
        "failed", "", 0, "file",
    )  # fmt: skip
    client.force_login(engineer)
    again = SimpleUploadedFile("members2.csv", b"member_id,headline\nm2,Cook\n", content_type="text/csv")
    page = client.post("/imports/", {"kind": "members", "file": again})
    assert page.status_code == 503 and "could not be stored for the workers" in page.content.decode()
    assert Member.objects.count() == 0
