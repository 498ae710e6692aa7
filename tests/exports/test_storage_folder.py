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
