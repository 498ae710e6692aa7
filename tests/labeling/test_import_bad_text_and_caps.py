"""Text PostgreSQL cannot store, over-long lines and over-size files end in a failed import that names the line
and field, through the form, the API and the real worker on PostgreSQL (the same files on SQLite:
test_import_sqlite.py). A clean file close to every cap imports."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import ImportBatch, Member
from policyhub import services as policy_services
from tests.celery_worker import Worker, purge_queue, worker_database_url

from .bad_import_files import BAD_FILES, CAPS_ENV, GOOD_FILE, MAX_LINE_BYTES, MAX_UPLOAD_BYTES, OVERSIZE

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def worker(tmp_path, settings):
    """A worker with the small caps of bad_import_files, sharing the uploads folder with this process."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_MAX_LINE_BYTES, settings.IMPORT_MAX_UPLOAD_BYTES = MAX_LINE_BYTES, MAX_UPLOAD_BYTES
    purge_queue()
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), **CAPS_ENV}
    started = Worker(tmp_path, database_url=worker_database_url(), env=env).start()
    yield started
    started.stop()


def _upload(client, case) -> int:
    response = client.post("/imports/", {"kind": "members", "file": SimpleUploadedFile(case.name, case.data)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return int(re.fullmatch(r"/imports/(\d+)/", response.url).group(1))


def _finished(worker, ids) -> list[ImportBatch]:
    worker.wait_for(
        lambda: ImportBatch.objects.filter(pk__in=ids, status__in=["succeeded", "failed"]).count() == len(ids),
        "the imports to finish",
    )
    return [ImportBatch.objects.get(pk=pk) for pk in ids]


def test_nul_bytes_and_long_lines_fail_the_import_with_line_and_field(worker, engineer, client_for):
    client = client_for(engineer)
    batches = _finished(worker, [_upload(client, case) for case in BAD_FILES])
    for case, batch in zip(BAD_FILES, batches, strict=True):
        assert batch.status == "failed", (case.name, batch.status, batch.errors)
        assert [(e["line"], e["field"]) for e in batch.errors] == [(case.line, case.field)], (case.name, batch.errors)
        assert case.reason in batch.errors[0]["reason"]
        page = client.get(f"/imports/{batch.pk}/").content.decode()
        assert f'<td>{case.line}</td><td class="mono">{case.field}</td>' in page and case.reason in page
    assert Member.objects.count() == 0  # all or nothing: the good rows of those files are not imported either
    assert "Traceback" not in worker.log()  # each was a bad row, not a task that died


def test_a_clean_file_close_to_every_cap_imports(worker, engineer, client_for):
    [batch] = _finished(worker, [_upload(client_for(engineer), GOOD_FILE)])
    assert (batch.status, batch.errors, batch.rows_created) == ("succeeded", [], 2)
    assert Member.objects.get(external_id="g2").summary == "é" * ((MAX_LINE_BYTES - 20) // 2)


def test_an_over_size_upload_is_refused_by_the_form_the_api_and_the_worker(worker, engineer, client_for, settings):
    client = client_for(engineer)
    form = client.post("/imports/", {"kind": "members", "file": SimpleUploadedFile(OVERSIZE.name, OVERSIZE.data)})
    assert form.status_code == 413
    reason = "the file is 4,001 bytes; imports take at most 4,000 bytes (IMPORT_MAX_UPLOAD_BYTES)"
    assert reason in form.content.decode()

    token = policy_services.api_token_create(user=engineer, name="pipeline").raw
    api = client.post(
        "/api/imports",
        {"kind": "members", "file": SimpleUploadedFile("big2.csv", OVERSIZE.data)},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert api.status_code == 413 and "imports take at most 4,000 bytes" in api.json()["detail"]

    settings.IMPORT_MAX_UPLOAD_BYTES = 10 * MAX_UPLOAD_BYTES  # the web accepts it; the worker's cap is lower
    worker_refused = _finished(worker, [_upload(client, OVERSIZE._replace(name="big3.csv"))])[0]

    refused = list(ImportBatch.objects.filter(source_name__in=["big.csv", "big2.csv"]))
    for batch in [*refused, worker_refused]:
        assert batch.status == "failed" and batch.file_size == MAX_UPLOAD_BYTES + 1
        assert [(e["line"], e["field"]) for e in batch.errors] == [(OVERSIZE.line, OVERSIZE.field)]
        assert OVERSIZE.reason in batch.errors[0]["reason"]
    assert len(refused) == 2 and all(not b.stored_file for b in refused)  # never stored, never queued
    assert not list((settings.MEDIA_ROOT / "imports").iterdir())  # the worker removed the one it refused
    assert Member.objects.count() == 0
