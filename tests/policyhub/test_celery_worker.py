"""A real Celery worker process freezes the prompt of a published version.

The worker runs as a subprocess against the Redis broker the tests enqueue into (``CELERY_BROKER_URL``, exported
by ``bin/test``) and the PostgreSQL test database this test session created. The tests are transactional so the
worker sees committed rows.
"""

import sys

import pytest
from django.db import transaction

from policyhub import celery_app, services
from policyhub.models import PromptSnapshot
from policyhub.prompts import build_system_prompt
from policyhub.tasks import policy_version_freeze_prompt
from tests.celery_worker import Worker, purge_queue, worker_database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A `celery worker` subprocess on the test broker and the test database, for the whole module."""
    with django_db_blocker.unblock():
        database_url = worker_database_url()
    purge_queue()
    worker = Worker(tmp_path_factory.mktemp("celery-worker"), database_url=database_url)
    try:
        yield worker.start()
    finally:
        worker.stop()


@pytest.fixture
def worker(celery_worker_process):
    """The module's worker; its log is printed after each test (pytest shows it when the test fails)."""
    celery_worker_process.check_alive()
    yield celery_worker_process
    sys.stdout.write(f"\n----- Celery worker log ({celery_worker_process.log_path}) -----\n")
    sys.stdout.write(celery_worker_process.log())


def _snapshots(version):
    return PromptSnapshot.objects.filter(version_id=version.pk)


def test_publishing_makes_the_worker_freeze_the_prompt(worker, policy, owner):
    draft = policy.versions.get(number=2)
    with transaction.atomic():
        services.policy_version_publish(version=draft, user=owner)
    # The task was enqueued on commit, so the worker reads the published row.
    snapshot = worker.wait_for(lambda: _snapshots(draft).first(), "the worker to write the PromptSnapshot of v2")

    draft.refresh_from_db()
    assert draft.status == "published"
    assert snapshot.system_prompt == build_system_prompt(draft)
    assert snapshot.content_hash == draft.content_hash
    assert "policyhub.tasks.policy_version_freeze_prompt" in worker.log()


def test_a_task_delivered_twice_leaves_one_snapshot(worker, policy, owner):
    version = services.policy_version_publish(version=policy.versions.get(number=2), user=owner)

    first = policy_version_freeze_prompt.delay(version.pk)
    second = policy_version_freeze_prompt.delay(version.pk)

    worker.wait_for(
        lambda: worker.task_succeeded(first.id) and worker.task_succeeded(second.id),
        f"both deliveries ({first.id}, {second.id}) to succeed",
    )
    assert _snapshots(version).count() == 1
    snapshot = _snapshots(version).get()
    version.refresh_from_db()
    assert snapshot.system_prompt == build_system_prompt(version)
    assert snapshot.content_hash == version.content_hash


def test_worker_acks_late_with_prefetch_one(worker):
    assert celery_app.conf.task_acks_late is True
    assert celery_app.conf.worker_prefetch_multiplier == 1
    assert policy_version_freeze_prompt.acks_late is True

    # The running worker process itself reports the same configuration over remote control.
    replies = celery_app.control.inspect(destination=[worker.hostname], timeout=5).conf(with_defaults=True) or {}
    assert worker.hostname in replies, f"no reply from {worker.hostname}: {replies}\n{worker.log()}"
    conf = replies[worker.hostname]
    assert conf["task_acks_late"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_url"].startswith("redis://")
