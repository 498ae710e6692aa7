"""An uploaded file is deleted once its import is done with it (imported, failed, or never stored); when the object
store is down at that moment the import still ends as it would, and the upload's deletion is recorded for the
watchdog, whose sweep deletes it once the store is back (an upload that never landed counts as deleted). With the
store up nothing is deferred. The bucket is a real server (moto in server mode, ``tests/s3_server.py``)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from labeling.models import ImportBatch, Member, PendingStorageDeletion
from labeling.services import import_batch_fail, import_stored_run, import_upload_enqueue
from labeling.services import imports as import_services
from labeling.services import storage as deletions
from policyhub import watchdog
from policyhub.leases import Sweep
from tests.s3_server import PREFIX, s3_fixture, s3_outage_fixture, s3_server_fixture  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def _upload(name="members.csv", rows="m1,Nurse\n"):
    return SimpleUploadedFile(name, f"member_id,headline\n{rows}".encode(), content_type="text/csv")


def _sweep_later() -> int:
    return deletions.storage_deletions_retry(
        sweep=Sweep(now=timezone.now() + deletions.retry_delay(1), queue_idle=True)
    )


def test_an_import_whose_store_goes_down_before_its_upload_is_deleted_succeeds_and_the_sweep_deletes_it(
    engineer, s3_outage, monkeypatch
):
    server, bucket = s3_outage
    batch = import_upload_enqueue(kind="members", upload=_upload(), user=engineer).batch
    stored = batch.stored_file
    assert bucket.keys("imports/") == [f"{PREFIX}/{stored}"]
    real = import_services.import_batch_run

    def import_then_lose_the_store(**kwargs):
        result = real(**kwargs)
        server.stop()  # the rows are in; the store goes down before the upload is deleted
        return result

    monkeypatch.setattr(import_services, "import_batch_run", import_then_lose_the_store)
    result = import_stored_run(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (result.batch.status, batch.status, batch.rows_created) == ("succeeded", "succeeded", 1)
    assert batch.stored_file == "" and Member.objects.filter(external_id="m1").exists()
    pending = PendingStorageDeletion.objects.get()
    assert (pending.storage, pending.name, pending.attempts) == ("default", stored, 1)
    assert "Could not connect to the endpoint URL" in pending.last_error

    server.start()
    assert bucket.keys("imports/") == [f"{PREFIX}/{stored}"]  # left behind until the sweep
    assert _sweep_later() == 1
    assert bucket.keys("imports/") == [] and not PendingStorageDeletion.objects.exists()


def test_an_import_failing_while_the_store_is_down_is_recorded_failed_and_its_upload_deleted_later(engineer, s3_outage):
    server, bucket = s3_outage
    batch = import_upload_enqueue(kind="members", upload=_upload(), user=engineer).batch
    stored = batch.stored_file
    server.stop()
    import_batch_fail(batch_id=batch.pk, error="WorkerLost: the worker died")  # the task's last failure
    batch.refresh_from_db()
    assert (batch.status, batch.stored_file) == ("failed", "")
    assert "the import stopped on an unexpected error" in batch.errors[0]["reason"]
    assert PendingStorageDeletion.objects.get().name == stored

    server.start()
    assert _sweep_later() == 1 and bucket.keys("imports/") == []


def test_an_upload_the_down_store_refused_is_recorded_and_counts_as_deleted_once_the_store_answers(engineer, s3_outage):
    server, bucket = s3_outage
    server.stop()
    result = import_upload_enqueue(kind="members", upload=_upload(), user=engineer)
    assert result.not_stored and result.batch.status == "failed"
    pending = PendingStorageDeletion.objects.get()  # the put may have landed with its answer lost: make sure
    assert pending.storage == "default" and pending.name.startswith(f"imports/{result.batch.pk}-")

    server.start()
    assert bucket.keys("imports/") == []  # it never landed: deleting it again is done at once
    assert _sweep_later() == 1 and not PendingStorageDeletion.objects.exists()


def test_with_the_store_up_an_upload_is_deleted_after_its_import_and_nothing_is_deferred(engineer, s3):
    batch = import_upload_enqueue(kind="members", upload=_upload(), user=engineer).batch
    assert import_stored_run(batch_id=batch.pk).batch.status == ImportBatch.Status.SUCCEEDED
    assert s3.keys("imports/") == [] and not PendingStorageDeletion.objects.exists()


def test_the_watchdog_sweep_deletes_the_due_files(s3):
    s3.put(f"{PREFIX}/imports/left-behind", b"member_id\n")
    PendingStorageDeletion.objects.create(storage="default", name="imports/left-behind", attempts=3,
                                          next_attempt_at=timezone.now())  # fmt: skip
    PendingStorageDeletion.objects.create(storage="default", name="imports/not-yet", attempts=3,
                                          next_attempt_at=timezone.now() + deletions.retry_delay(99))  # fmt: skip
    assert watchdog.sweep()["storage_deletions"] == 1  # what beat runs (policyhub.tasks.watchdog_sweep)
    assert s3.keys("imports/") == []
    assert list(PendingStorageDeletion.objects.values_list("name", flat=True)) == ["imports/not-yet"]


def test_the_admin_lists_pending_deletions_read_only(make_user, client):
    error = "EndpointConnectionError: Could not connect"
    pending = PendingStorageDeletion.objects.create(
        storage="exports", name="7/abc/labels.jsonl", attempts=2, last_error=error
    )
    client.force_login(make_user("sam", is_staff=True, is_superuser=True))
    listing = client.get("/admin/labeling/pendingstoragedeletion/")
    assert listing.status_code == 200 and "7/abc/labels.jsonl" in listing.content.decode()
    assert client.get("/admin/labeling/pendingstoragedeletion/add/").status_code == 403
    url = f"/admin/labeling/pendingstoragedeletion/{pending.pk}/delete/"
    assert client.post(url, {"post": "yes"}).status_code == 403  # removing it by hand would leave its file behind
    assert PendingStorageDeletion.objects.filter(pk=pending.pk).exists()


def test_a_sweep_killed_while_deleting_loses_no_deletion_and_another_sweep_leaves_its_claim_alone(
    engineer, s3_outage, monkeypatch
):
    server, bucket = s3_outage
    stored = []
    for name in ("a.csv", "b.csv"):
        batch = import_upload_enqueue(kind="members", upload=_upload(name), user=engineer).batch
        stored.append(batch.stored_file)
    server.stop()
    assert deletions.storage_delete_or_defer(names=stored) == stored
    server.start()
    real = deletions.storage_for

    def killed_during_the_call(alias):
        raise SystemExit("the worker was killed")

    monkeypatch.setattr(deletions, "storage_for", killed_during_the_call)
    now = timezone.now() + deletions.retry_delay(1)
    with pytest.raises(SystemExit):
        deletions.storage_deletions_retry(sweep=Sweep(now=now, queue_idle=True))
    assert PendingStorageDeletion.objects.count() == 2
    monkeypatch.setattr(deletions, "storage_for", real)
    # claimed: a sweep before the claim runs out leaves them alone; one after deletes both
    assert deletions.storage_deletions_retry(sweep=Sweep(now=now + deletions.CLAIM / 2, queue_idle=True)) == 0
    assert deletions.storage_deletions_retry(sweep=Sweep(now=now + deletions.CLAIM, queue_idle=True)) == 2
    assert bucket.keys("imports/") == [] and not PendingStorageDeletion.objects.exists()
