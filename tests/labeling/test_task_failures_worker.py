"""An import or a run whose worker task fails on something unexpected ends failed with the error on its page and in
the API, never left queued or running; a dropped database connection costs a retry, not the import.

Real faults through a real worker on PostgreSQL: an upload the worker cannot find (its uploads folder is not the
web's), a batch run whose teacher endpoint is not an OpenAI API, the worker's database connection killed by the
server mid-import; and the other side: an endpoint down for a moment costs a retry, not the run."""

import io
import re
import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from labeling.models import ImportBatch, LabelingRun, Member
from labeling.services import import_file, labeling_run_create
from policyhub import services as policy_services
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {policy_services.api_token_create(user=user, name='t').raw}"}


def _upload(client, name: str, data: bytes) -> int:
    response = client.post("/imports/", {"kind": "members", "file": SimpleUploadedFile(name, data)})
    assert response.status_code == 302
    return int(re.fullmatch(r"/imports/(\d+)/", response.url).group(1))


def test_an_import_the_worker_cannot_read_fails_with_the_error(engineer, client_for, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "web-media"
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"MEDIA_ROOT": str(tmp_path / "elsewhere")})
    worker.start()
    try:
        batch_id = _upload(client_for(engineer), "m.csv", b"member_id,headline\nm1,Engineer\n")
        worker.wait_for(lambda: ImportBatch.objects.get(pk=batch_id).is_finished, "the import to end")
    finally:
        worker.stop()
    batch = ImportBatch.objects.get(pk=batch_id)
    assert batch.status == "failed" and batch.finished_at is not None
    [error] = batch.errors
    assert (error["line"], error["field"]) == (0, "file")
    assert "unexpected error" in error["reason"] and "FileNotFoundError" in error["reason"]
    page = client_for(engineer).get(f"/imports/{batch_id}/").content.decode()
    assert "FileNotFoundError" in page and "Traceback" not in page
    api = client.get(f"/api/imports/{batch_id}", **_bearer(engineer)).json()
    assert api["status"] == "failed" and "FileNotFoundError" in api["errors"][0]["reason"]
    assert "Traceback" in worker.log()  # the whole story is in the worker's log
    assert Member.objects.count() == 0


def test_a_dropped_database_connection_mid_import_is_retried_and_the_import_succeeds(
    engineer, client_for, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    rows = 200_000
    data = b"member_id,headline\n" + b"".join(b"m%d,Engineer %d\n" % (i, i) for i in range(rows))
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"MEDIA_ROOT": str(settings.MEDIA_ROOT)})
    worker.start()
    try:
        batch_id = _upload(client_for(engineer), "many.csv", data)
        worker.wait_for(lambda: ImportBatch.objects.get(pk=batch_id).rows_seen > 0, "the import to be under way")
        with connection.cursor() as cursor:  # the server drops every other session of this database
            cursor.execute(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        worker.wait_for(lambda: ImportBatch.objects.get(pk=batch_id).is_finished, "the import to end", timeout=90)
    finally:
        worker.stop()
    batch = ImportBatch.objects.get(pk=batch_id)
    assert (batch.status, batch.errors, batch.rows_created) == ("succeeded", [], rows)
    assert Member.objects.count() == rows
    assert re.search(r"import_batch_process\[[^\]]+\] retry", worker.log()), worker.log()[-3000:]


def test_a_batch_run_whose_endpoint_is_not_an_openai_api_fails_with_the_error(
    pairs, published, make_config, engineer, client_for, client, tmp_path
):
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"})
    with FakeOpenAI() as server:
        config = make_config(base_url=server.base_url.replace("/v1", "/not-an-api/v1"), request_timeout=5)
        worker.start()
        try:
            run = labeling_run_create(version=published, config=config, selection={"all": True}, mode="batch")
            worker.wait_for(lambda: not LabelingRun.objects.get(pk=run.pk).is_active, "the run to end")
        finally:
            worker.stop()
    run.refresh_from_db()
    assert run.status == "failed" and run.finished_at is not None
    assert run.error.startswith("batch submission: OpenAIError: Error code: 404 - Unknown request URL")
    page = client_for(engineer).get(f"/runs/{run.pk}/").content.decode()
    assert "batch submission: OpenAIError: Error code: 404" in page and "Traceback" not in page
    api = client.get(f"/api/runs/{run.pk}", **_bearer(engineer)).json()
    assert api["status"] == "failed" and api["error"] == run.error


def test_a_healthy_import_and_run_on_the_worker_end_succeeded(pairs, published, make_config, tmp_path):
    """The other side: nothing above fails a job that has no fault."""
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"})
    with FakeOpenAI() as server:
        config = make_config(base_url=server.base_url, request_timeout=5)
        worker.start()
        try:
            run = labeling_run_create(version=published, config=config, selection={"all": True})
            worker.wait_for(lambda: not LabelingRun.objects.get(pk=run.pk).is_active, "the run to end")
        finally:
            worker.stop()
    run.refresh_from_db()
    assert (run.status, run.error, run.samples_done) == ("succeeded", "", 4)
    assert import_file(kind="members", stream=io.BytesIO(b"member_id,headline\nz1,Cook\n"), name="z.csv").ok


def test_a_batch_submission_while_the_endpoint_is_down_is_retried_and_the_run_succeeds(
    pairs, published, make_config, tmp_path
):
    with socket.socket() as probe:  # a port nothing listens on until the server starts below
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = FakeOpenAI(port=port)
    config = make_config(base_url=server.base_url, request_timeout=5)
    purge_queue()
    env = {"OPENAI_API_KEY": "test", "LABELING_BATCH_POLL_SECONDS": "1"}
    worker = Worker(tmp_path, database_url=worker_database_url(), env=env).start()
    try:
        run = labeling_run_create(version=published, config=config, selection={"all": True}, mode="batch")
        worker.wait_for(lambda: re.search(r"labeling_run_batch_submit\[[^\]]+\] retry", worker.log()), "a retry")
        assert LabelingRun.objects.get(pk=run.pk).status == "running"  # connection trouble does not fail the run
        with server:
            worker.wait_for(lambda: not LabelingRun.objects.get(pk=run.pk).is_active, "the run to end", timeout=60)
    finally:
        worker.stop()
    run.refresh_from_db()
    assert (run.status, run.error, run.samples_done) == ("succeeded", "", 4)
