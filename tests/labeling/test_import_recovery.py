"""An uploaded import whose worker is killed mid-way is imported again by the watchdog, every row exactly once.

Real parts: Celery workers with beat inside on Redis with the default visibility timeout (an hour), PostgreSQL.
The import is held mid-way by a lock on the members table (inside its one transaction); while it waits its lease
is renewed, so the watchdog leaves it alone; then the worker is killed, and a new one imports the file from the
start (the dead one's transaction left nothing).
"""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from labeling.models import ImportBatch, Member
from labeling.services import import_upload_enqueue
from tests.celery_worker import Worker, purge_queue, table_locked, worker_database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

LEASE = 4
ROWS = 500


def _batch(batch) -> ImportBatch:
    return ImportBatch.objects.get(pk=batch.pk)


def test_an_import_killed_mid_way_is_imported_once_by_the_next_worker(engineer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # shared with the workers
    env = {
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "WORK_LEASE_SECONDS": str(LEASE),
        "LABELING_CHUNK_LEASE_SECONDS": "4",
    }
    text = "member_id,headline,skills\n" + "".join(f"m{i},Engineer {i},Python\n" for i in range(ROWS))
    purge_queue()
    first = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True).start()
    second = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True)
    try:
        with table_locked(Member):
            upload = SimpleUploadedFile("members.csv", text.encode(), content_type="text/csv")
            batch = import_upload_enqueue(kind="members", upload=upload, user=engineer).batch
            first.wait_for(lambda: _batch(batch).status == "running", "the import to start")
            time.sleep(2 * LEASE)  # blocked but alive: its lease is renewed and nobody takes it over
            held = _batch(batch)
            assert (held.status, held.recoveries, held.rows_created) == ("running", 0, 0)
            assert held.lease_until > timezone.now()
            first.kill()
        second.start()
        back = time.monotonic()
        second.wait_for(lambda: _batch(batch).status == "succeeded", "the import to finish", timeout=60)
        took = time.monotonic() - back
    finally:
        first.stop()
        second.stop()
    batch = _batch(batch)
    assert (batch.rows_created, batch.error_count, batch.recoveries) == (ROWS, 0, 1)
    assert Member.objects.count() == ROWS and Member.objects.filter(external_id="m499").exists()
    assert batch.stored_file == "" and not list((tmp_path / "media").rglob("*.*"))
    assert took < 2 * LEASE + 4, f"recovered in {took:.1f} s"
    client = Client()
    client.force_login(engineer)
    page = client.get(f"/imports/{batch.pk}/").content.decode()
    assert "the watchdog sent it to the workers again at" in page and f"{ROWS} created" in page
