"""Student uploads imported by real Celery workers: the API's 202 and the evaluation polled to ready, a bad row
that leaves nothing but a failed evaluation with its line and field, the command waiting for the worker, and a
worker killed mid-import whose evaluation the watchdog hands to the next worker (every prediction exactly once)."""

import io
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from labeling.models import ImportBatch, StudentEvaluation, StudentPrediction
from policyhub import services as policy_services
from tests.celery_worker import Worker, purge_queue, table_locked, worker_database_url
from tests.labeling.students.conftest import csv_text, teacher_labels

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

LEASE = 4


def _env(settings) -> dict:
    return {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "POLICYHUB_EXPORTS_DIR": str(settings.EXPORTS_ROOT),
            "WORK_LEASE_SECONDS": str(LEASE), "LABELING_CHUNK_LEASE_SECONDS": str(LEASE)}  # fmt: skip


def _predictions(export) -> bytes:
    """The teacher's label for every pair of the export."""
    rows = [{"pair_id": pair_id, "label": label} for pair_id, label in sorted(teacher_labels(export).items())]
    return csv_text(rows, ["pair_id", "label"]).encode()


def _upload(client, user, export, data: bytes, version="1"):
    token = policy_services.api_token_create(user=user, name=f"t{version}").raw
    file = io.BytesIO(data)
    file.name = "preds.csv"
    body = {"export": export.pk, "student_name": "tiny", "student_version": version, "file": file}
    return client.post("/api/students", body, HTTP_AUTHORIZATION=f"Bearer {token}"), token


def _status(evaluation_id: int) -> str:
    return StudentEvaluation.objects.select_related("import_batch").get(pk=evaluation_id).status


def test_a_worker_imports_an_upload_the_api_polls_and_a_bad_row_fails_it(student_export, engineer, client, settings):
    purge_queue()
    worker = Worker(settings.MEDIA_ROOT.parent, database_url=worker_database_url(), env=_env(settings)).start()
    try:
        response, token = _upload(client, engineer, student_export, _predictions(student_export))
        assert response.status_code == 202, response.content
        url = response.json()["url"]
        worker.wait_for(lambda: _status(response.json()["id"]) == "ready", "the import to finish")
        body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}").json()
        assert (body["status"], body["rows"], body["error_count"]) == ("ready", 60, 0)
        assert body["figures"]["comparisons"]["teacher"]["accuracy"] == 1.0

        bad = _predictions(student_export).replace(b"\n", b"\n999999,no_match\n", 1)  # line 2: unknown pair
        failed, token = _upload(client, engineer, student_export, bad, version="2")
        assert failed.status_code == 202
        worker.wait_for(lambda: _status(failed.json()["id"]) == "failed", "the import to fail")
        body = client.get(failed.json()["url"], HTTP_AUTHORIZATION=f"Bearer {token}").json()
        assert body["errors"] == [{"line": 2, "field": "pair_id", "reason": "unknown pair id 999999"}]
        assert body["error_count"] == 1 and body["rows"] == 0 and body["figures"] == {}
        assert not StudentPrediction.objects.filter(evaluation_id=failed.json()["id"]).exists()
        assert StudentPrediction.objects.count() == 60  # only the first evaluation's

        path = settings.MEDIA_ROOT.parent / "cli.csv"
        path.write_bytes(_predictions(student_export))
        out = io.StringIO()
        call_command("student", "import", str(path), "--export", str(student_export.pk), "--name", "cli",
                     "--version", "1", "--user", engineer.username, stdout=out)  # fmt: skip  # waits for the worker
        assert "60 predictions of cli 1 imported" in out.getvalue()
        path.write_bytes(bad)
        with pytest.raises(CommandError, match="1 bad rows"):
            call_command("student", "import", str(path), "--export", str(student_export.pk), "--name", "cli",
                         "--version", "2", "--user", engineer.username, stdout=io.StringIO())  # fmt: skip
    finally:
        worker.stop()
    assert not list((settings.MEDIA_ROOT / "imports").iterdir())  # the workers removed the uploads


def test_a_worker_killed_mid_import_leaves_it_to_the_next_one(student_export, engineer, client, settings):
    purge_queue()
    folder = settings.MEDIA_ROOT.parent
    first = Worker(folder, database_url=worker_database_url(), env=_env(settings), beat=True).start()
    second = Worker(folder, database_url=worker_database_url(), env=_env(settings), beat=True)
    try:
        with table_locked(StudentPrediction):  # the import waits at its insert, inside its one transaction
            response, _ = _upload(client, engineer, student_export, _predictions(student_export))
            evaluation_id = response.json()["id"]
            first.wait_for(lambda: _status(evaluation_id) == "running", "the import to start")
            time.sleep(2 * LEASE)  # blocked but alive: its lease is renewed and nobody takes it over
            batch = ImportBatch.objects.get(student_evaluation__pk=evaluation_id)
            assert (batch.status, batch.recoveries) == ("running", 0) and batch.lease_until > timezone.now()
            first.kill()
        assert _status(evaluation_id) == "running"  # the killed worker left it running, its lease running out
        second.start()
        second.wait_for(lambda: _status(evaluation_id) == "ready", "the watchdog and the next worker", timeout=60)
    finally:
        first.stop()
        second.stop()
    evaluation = StudentEvaluation.objects.select_related("import_batch").get(pk=evaluation_id)
    assert evaluation.rows == 60 and evaluation.import_batch.recoveries == 1
    assert StudentPrediction.objects.filter(evaluation=evaluation).count() == 60
