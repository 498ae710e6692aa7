"""Deleting a built export while the object store is down: the deletion succeeds for the user as it always did
(the export is marked deleted, the same message), and every object the store could not delete is recorded; once
the store is back, the watchdog's sweep deletes them (an object already gone counts) and the records go. While the
store stays down the sweep backs off. The bucket is a real server (moto in server mode, ``tests/s3_server.py``),
stopped and started again on the same port; the sweep runs here as the recovery tests run it, with a ``Sweep``."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exports import services
from labeling.models import PendingStorageDeletion
from labeling.services import storage as deletions
from policyhub import services as policy_services
from policyhub.leases import Sweep
from tests.s3_server import PREFIX, s3_fixture, s3_outage_fixture, s3_server_fixture  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def _built(export_run, engineer):
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    export = services.export_build(export_id=export.pk)
    assert export.status == "ready"
    return export


def _sweep(after: timedelta = timedelta(0)) -> int:
    return deletions.storage_deletions_retry(sweep=Sweep(now=timezone.now() + after, queue_idle=True))


def _delete(how, client, engineer, export):
    if how == "api":
        token = policy_services.api_token_create(user=engineer, name="delete").raw
        response = client.delete(f"/api/exports/{export.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200 and response.json()["status"] == "deleted"
        return
    client.force_login(engineer)
    page = client.post(f"/exports/{export.pk}/delete/", follow=True)
    assert page.status_code == 200
    assert f"Export #{export.pk} deleted: its files are gone, this record stays." in page.content.decode()


@pytest.mark.parametrize("how", ["api", "page"])
def test_deleting_while_the_store_is_down_succeeds_and_the_sweep_removes_the_objects_once_it_is_back(
    export_run, engineer, client, s3_outage, how
):
    server, bucket = s3_outage
    export = _built(export_run, engineer)
    stored = bucket.keys(f"exports/{export.pk}/")
    assert len(stored) == 6  # three data files, the dataset card, the manifest and the archive
    server.stop()

    _delete(how, client, engineer, export)
    export.refresh_from_db()
    assert (export.status, export.deleted_by) == ("deleted", engineer) and export.deleted_at
    pending = list(PendingStorageDeletion.objects.order_by("attempts", "name"))
    assert {f"{PREFIX}/exports/{row.name}" for row in pending} == set(stored)
    assert {row.storage for row in pending} == {"exports"}
    tried, untried = pending[-1], pending[:-1]  # after the first refused delete the others are not tried
    assert tried.attempts == 1 and "Could not connect to the endpoint URL" in tried.last_error
    assert {row.attempts for row in untried} == {0} and all("Could not connect" in row.last_error for row in untried)

    server.start()
    assert bucket.keys(f"exports/{export.pk}/") == stored  # still there: nothing deleted them yet
    assert _sweep() == 0 and PendingStorageDeletion.objects.count() == 6  # the first retry waits a minute
    bucket.client.delete_object(Bucket=bucket.name, Key=stored[0])  # one is gone already: that counts as done
    assert _sweep(deletions.retry_delay(1)) == 6
    assert bucket.keys(f"exports/{export.pk}/") == []
    assert not PendingStorageDeletion.objects.exists()
    export.refresh_from_db()
    assert export.status == "deleted"


def test_while_the_store_stays_down_the_sweep_backs_off_and_keeps_every_record(export_run, engineer, s3_outage):
    server, bucket = s3_outage
    export = _built(export_run, engineer)
    server.stop()
    services.export_delete(export=export, user=engineer)

    later = timezone.now() + deletions.retry_delay(1)
    assert deletions.storage_deletions_retry(sweep=Sweep(now=later, queue_idle=True)) == 0
    rows = list(PendingStorageDeletion.objects.order_by("-last_attempt_at", "name"))
    assert len(rows) == 6
    retried = [row for row in rows if row.last_attempt_at == later]
    assert len(retried) == 1  # the store is down: one try, not six waits for it
    assert retried[0].next_attempt_at == later + 2 * deletions.retry_delay(1)  # the wait doubles
    assert "Could not connect to the endpoint URL" in retried[0].last_error
    assert deletions.retry_delay(30) == timedelta(hours=6)  # and stops growing (STORAGE_DELETE_RETRY_MAX_SECONDS)

    server.start()
    assert _sweep(timedelta(hours=1)) == 6
    assert bucket.keys(f"exports/{export.pk}/") == [] and not PendingStorageDeletion.objects.exists()


def test_with_the_store_up_an_export_is_deleted_at_once_and_nothing_is_deferred(export_run, engineer, client, s3):
    export = _built(export_run, engineer)
    _delete("api", client, engineer, export)
    assert s3.keys(f"exports/{export.pk}/") == []
    assert not PendingStorageDeletion.objects.exists()
