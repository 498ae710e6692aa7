"""Export pages (create, watch, card, downloads, delete), the export_dataset command, and who may use them."""

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command

from exports import services
from exports.models import DatasetExport


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_create_from_the_form_then_see_the_card_and_download(export_run, engineer, client_for):
    client = client_for(engineer)
    form = client.get("/exports/new/")
    assert form.status_code == 200 and "csrfmiddlewaretoken" in form.content.decode()
    posted = client.post("/exports/new/", {
        "version": export_run.policy_version.pk, "runs": [export_run.pk], "approved_only": "on",
        "train": 0.6, "validation": 0.2, "test": 0.2, "seed": 4,
    })  # fmt: skip
    export = DatasetExport.objects.get()
    assert posted.status_code == 302 and posted["Location"] == f"/exports/{export.pk}/"
    assert export.split == {"train": 0.6, "validation": 0.2, "test": 0.2, "seed": 4, "group_by_job": False}
    building = client.get(f"/exports/{export.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in building and "Queued" in building
    services.export_build(export_id=export.pk)
    partial = client.get(f"/exports/{export.pk}/", HTTP_HX_REQUEST="true")
    assert partial["HX-Refresh"] == "true"  # the page reloads once to show the card and the files
    page = client.get(f"/exports/{export.pk}/").content.decode()
    assert 'id="dataset-card"' in page and f"Dataset: {export_run.policy_version.policy.name}" in page
    assert "<script" not in page.split('id="dataset-card"')[1].split("</div>")[0]
    export.refresh_from_db()
    parquet = client.get(f"/exports/{export.pk}/files/labels.parquet")
    assert hashlib.sha256(_body(parquet)).hexdigest() == export.file_entry("labels.parquet")["sha256"]
    assert parquet["Content-Disposition"].startswith("attachment")
    archive = client.get(f"/exports/{export.pk}/files/{export.archive_name}")
    assert hashlib.sha256(_body(archive)).hexdigest() == export.archive_sha256
    listing = client.get("/exports/").content.decode()
    assert f'data-export="{export.pk}"' in listing


def test_the_form_shows_errors_by_field_and_creates_nothing(export_run, engineer, client_for):
    response = client_for(engineer).post("/exports/new/", {
        "version": export_run.policy_version.pk, "train": 0.9, "validation": 0.3, "test": 0.1, "seed": 1,
    })  # fmt: skip
    assert response.status_code == 400
    assert "Split ratios must add up to 1" in response.content.decode()
    assert DatasetExport.objects.count() == 0


def test_delete_from_the_page(export_run, engineer, client_for):
    export, _ = services.export_create(user=engineer, version=export_run.policy_version)
    services.export_build(export_id=export.pk)
    client = client_for(engineer)
    assert client.get(f"/exports/{export.pk}/delete/").status_code == 405
    client.post(f"/exports/{export.pk}/delete/")
    export.refresh_from_db()
    assert export.status == "deleted"
    assert client.get(f"/exports/{export.pk}/files/labels.jsonl").status_code == 404
    assert "deleted by emma" in client.get(f"/exports/{export.pk}/").content.decode()


@pytest.mark.parametrize("role", ["annotator", "owner", "nobody"])
def test_pages_are_for_ml_engineers(export_run, engineer, client, client_for, request, role):
    export, _ = services.export_create(user=engineer, version=export_run.policy_version)
    services.export_build(export_id=export.pk)
    urls = ["/exports/", "/exports/new/", f"/exports/{export.pk}/", f"/exports/{export.pk}/files/labels.jsonl"]
    for url in urls:
        assert client.get(url).status_code == 302  # anonymous: to the login page
    user_client = client_for(request.getfixturevalue(role))
    for url in urls:
        assert user_client.get(url).status_code == 403, url
    assert user_client.post(f"/exports/{export.pk}/delete/").status_code == 403
    assert user_client.post("/exports/new/", {"version": export_run.policy_version.pk}).status_code == 403
    export.refresh_from_db()
    assert export.status == "ready" and DatasetExport.objects.count() == 1


def test_the_command_builds_an_export(export_run, engineer, capsys):
    version = export_run.policy_version
    call_command("export_dataset", "--policy", version.policy.slug, "--version", str(version.number),
                 "--run", str(export_run.pk), "--human-only", "--split", "0.5,0.5,0", "--seed", "9",
                 "--user", engineer.username)  # fmt: skip
    export = DatasetExport.objects.get()
    out = capsys.readouterr().out
    assert f"Export #{export.pk}: 3 rows" in out and "labels.parquet" in out
    assert export.created_by == engineer and export.filters["human_only"] is True
    rows = [json.loads(line) for line in (services.export_dir(export) / "labels.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} <= {"train", "validation"}
    with pytest.raises(CommandError, match="add up to 1"):
        call_command("export_dataset", "--policy", version.policy.slug, "--version", "1", "--split", "0.5,0.5,0.5")
    with pytest.raises(CommandError, match="No run #999"):
        call_command("export_dataset", "--policy", version.policy.slug, "--version", "1", "--run", "999")
    assert DatasetExport.objects.count() == 1
