"""An export whose build fails on the worker ends failed with the error on its page and in the API, never left
queued: a real worker whose exports folder cannot be created (its path runs through a file). A worker with a
usable folder builds the next export."""

import pytest

from exports import services
from exports.models import DatasetExport
from policyhub import services as policy_services
from tests.celery_worker import Worker, purge_queue, worker_database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _build_on_worker(tmp_path, exports_dir, export_run, engineer, key: str) -> DatasetExport:
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"POLICYHUB_EXPORTS_DIR": str(exports_dir)})
    worker.start()
    try:
        export, _ = services.export_create(user=engineer, version=export_run.policy_version, idempotency_key=key)
        worker.wait_for(lambda: not DatasetExport.objects.get(pk=export.pk).is_active, "the build to end")
    finally:
        worker.stop()
    export.refresh_from_db()
    return export


def test_an_export_whose_folder_cannot_be_made_fails_with_the_error(
    export_run, engineer, client_for, client, tmp_path, settings
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    export = _build_on_worker(tmp_path, blocker / "exports", export_run, engineer, "first")
    assert export.status == "failed" and export.finished_at is not None
    assert export.error.startswith("NotADirectoryError: ") and str(blocker) in export.error
    page = client_for(engineer).get(f"/exports/{export.pk}/").content.decode()
    assert "The build failed: NotADirectoryError" in page and "Traceback" not in page
    token = policy_services.api_token_create(user=engineer, name="t").raw
    api = client.get(f"/api/exports/{export.pk}", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert (api["status"], api["error"]) == ("failed", export.error)

    settings.EXPORTS_ROOT = tmp_path / "exports"
    built = _build_on_worker(tmp_path, settings.EXPORTS_ROOT, export_run, engineer, "second")
    assert (built.status, built.error) == ("ready", "")
    assert (settings.EXPORTS_ROOT / str(built.pk) / built.archive_name).is_file()
