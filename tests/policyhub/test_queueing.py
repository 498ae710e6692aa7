"""Services enqueue tasks by name, after their transaction commits; a name no worker knows fails at once."""

import pytest
from celery.exceptions import NotRegistered

from exports.tasks import export_build_task
from policyhub.queueing import enqueue, enqueue_each


def test_a_task_is_sent_only_when_the_transaction_commits(db, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(export_build_task, "apply_async", lambda args, countdown=None: sent.append((args, countdown)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        enqueue("exports.tasks.export_build_task", 7, countdown=3)
        enqueue_each("exports.tasks.export_build_task", [(8,), (9,)])
        assert sent == []  # nothing leaves before the commit
    assert len(callbacks) == 2
    assert sent == [((7,), 3), ((8,), None), ((9,), None)]


def test_an_unknown_task_name_fails_in_the_caller(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(NotRegistered):
        enqueue("labeling.tasks.no_such_task", 1)
    assert callbacks == []
