"""An export whose worker is killed mid-build is built again by the watchdog, complete and exactly as a clean build.

Real parts: Celery workers with beat inside on Redis with the default visibility timeout (an hour), PostgreSQL,
the files on disk. The build is held mid-way by a lock on the candidates table (it is selecting rows, status
``building``); while it waits its lease is renewed and the watchdog leaves it alone; then the worker is killed
and a new one builds the export from the start.
"""

import time

import pytest
from django.test import Client
from django.utils import timezone

from exports import services
from exports.manifest import file_entry
from exports.models import DatasetExport
from labeling.models import Candidate
from tests.celery_worker import Worker, purge_queue, table_locked, worker_database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

LEASE = 4


def _export(export) -> DatasetExport:
    return DatasetExport.objects.get(pk=export.pk)


def test_an_export_killed_mid_build_is_built_once_by_the_next_worker(export_run, engineer, settings, tmp_path):
    env = {"POLICYHUB_EXPORTS_DIR": str(settings.EXPORTS_ROOT), "WORK_LEASE_SECONDS": str(LEASE)}
    purge_queue()
    first = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True).start()
    second = Worker(tmp_path, database_url=worker_database_url(), env=env, beat=True)
    try:
        with table_locked(Candidate):
            export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
            first.wait_for(lambda: _export(export).status == "building", "the build to start")
            time.sleep(2 * LEASE)  # blocked but alive: its lease is renewed and nobody takes it over
            held = _export(export)
            assert (held.status, held.recoveries) == ("building", 0) and held.lease_until > timezone.now()
            first.kill()
        second.start()
        back = time.monotonic()
        second.wait_for(lambda: _export(export).status == "ready", "the export to be built", timeout=60)
        took = time.monotonic() - back
    finally:
        first.stop()
        second.stop()
    export = _export(export)
    assert export.recoveries == 1 and export.lease_token == "", export.error
    assert took < 2 * LEASE + 4, f"recovered in {took:.1f} s"
    approved = Candidate.objects.filter(run=export_run).exclude(approved_label="").count()
    assert export.manifest["rows"] == approved == 60
    folder = services.export_dir(export)
    for entry in export.manifest["files"]:
        assert file_entry(folder / entry["name"])["sha256"] == entry["sha256"]
    assert not list(settings.EXPORTS_ROOT.glob(".staging-*"))
    client = Client()
    client.force_login(engineer)
    assert "the watchdog sent the build again at" in client.get(f"/exports/{export.pk}/").content.decode()
    # the same recipe built cleanly in this process gives the very same labels
    clean, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    clean = services.export_build(export_id=clean.pk)
    assert (folder / "labels.jsonl").read_bytes() == (services.export_dir(clean) / "labels.jsonl").read_bytes()
