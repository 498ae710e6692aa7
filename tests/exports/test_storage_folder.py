"""The embedded default keeps exports in a folder (``EXPORTS_ROOT``, no variable needed): a file changed or removed
on disk after the build is refused on download (409), never served, and ``export_verify`` finds even a one-bit
change that keeps the size."""

import io
import stat

import pytest
from django.core.management import CommandError, call_command

from exports import services
from policyhub import services as policy_services

pytestmark = pytest.mark.django_db


def test_a_file_changed_or_removed_on_disk_is_refused_and_found(export_run, engineer, client):
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    export = services.export_build(export_id=export.pk)
    assert export.storage_key == str(export.pk) and export.stored_etags == {}
    out = io.StringIO()
    call_command("export_verify", str(export.pk), stdout=out)
    assert f"export #{export.pk}: intact ({services.export_dir(export)})" in out.getvalue()
    token = policy_services.api_token_create(user=engineer, name="dl").raw
    folder = services.export_dir(export)

    labels = folder / "labels.jsonl"
    labels.chmod(stat.S_IRUSR | stat.S_IWUSR)
    labels.write_bytes(labels.read_bytes() + b"{}\n")  # a row slipped in
    response = client.get(f"/api/exports/{export.pk}/files/labels.jsonl", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 409
    assert "was changed after the export was built: it is" in response.json()["detail"]

    chat = folder / "openai_chat.jsonl"
    chat.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(chat.read_bytes())
    data[5] ^= 1  # same size: only the checksum tells
    chat.write_bytes(bytes(data))
    (folder / "labels.parquet").unlink()
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 export"):
        call_command("export_verify", str(export.pk), stderr=err)
    report = err.getvalue()
    assert "labels.jsonl was changed" in report and "labels.parquet is missing" in report
    assert "openai_chat.jsonl has sha256" in report
    gone = client.get(f"/api/exports/{export.pk}/files/labels.parquet", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert gone.status_code == 409 and "is missing" in gone.json()["detail"]
    archive = client.get(f"/api/exports/{export.pk}/archive", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert archive.status_code == 200  # the untouched archive is still served


def test_a_file_the_disk_will_not_delete_does_not_stop_the_deletion_and_the_sweep_finishes_it(
    export_run, engineer, monkeypatch
):
    from django.core.files.storage import FileSystemStorage
    from django.utils import timezone

    from labeling.models import PendingStorageDeletion
    from labeling.services import storage as deletions
    from policyhub.leases import Sweep

    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    export = services.export_build(export_id=export.pk)
    folder = services.export_dir(export)
    files = sorted(path.name for path in folder.iterdir())
    real_delete = FileSystemStorage.delete

    def refuse_the_archive(self, name):
        if name.endswith(export.archive_name):
            raise PermissionError(13, "Permission denied", name)
        real_delete(self, name)

    monkeypatch.setattr(FileSystemStorage, "delete", refuse_the_archive)
    services.export_delete(export=export, user=engineer)
    export.refresh_from_db()
    assert export.status == "deleted"  # the deletion went through: no export half deleted and still listed
    assert [path.name for path in folder.iterdir()] == [export.archive_name]  # the rest is gone
    pending = PendingStorageDeletion.objects.get()
    assert (pending.storage, pending.name, pending.attempts) == ("exports", f"{export.key}/{export.archive_name}", 1)
    assert "Permission denied" in pending.last_error and len(files) == 6

    monkeypatch.setattr(FileSystemStorage, "delete", real_delete)
    later = Sweep(now=timezone.now() + deletions.retry_delay(1), queue_idle=True)
    assert deletions.storage_deletions_retry(sweep=later) == 1
    assert not folder.exists() and not PendingStorageDeletion.objects.exists()


def test_deleting_an_export_in_a_folder_removes_its_folder(export_run, engineer):
    from labeling.models import PendingStorageDeletion

    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    export = services.export_build(export_id=export.pk)
    folder = services.export_dir(export)
    services.export_delete(export=export, user=engineer)
    assert not folder.exists() and not PendingStorageDeletion.objects.exists()
