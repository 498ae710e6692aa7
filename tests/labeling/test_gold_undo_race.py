"""An annotator's undo and an owner's gold marking of the same item at the same moment: whichever takes the
policy lock second sees the other's result. Real threads, each with its own PostgreSQL connection."""

import threading
import time

import pytest
from django.db import connection, transaction

from labeling.models import GoldLabel
from labeling.services import GoldError, gold_mark, review_claim_next, review_submit, review_undo_last

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _wait_until_blocked_on_a_lock(timeout=5.0) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("gold marking never waited for the undo's lock")


def test_gold_is_refused_for_an_item_an_undo_reopened_while_the_owner_was_marking_it(review_items, annotator, owner):
    run = review_items(1)
    run.status = run.Status.SUCCEEDED
    run.save(update_fields=["status"])
    item = review_claim_next(user=annotator, run_id=run.pk)
    reviewed = review_submit(user=annotator, candidate_id=item.pk, label="no_match")
    assert reviewed.is_human_approved

    undone, release, outcome = threading.Event(), threading.Event(), {}

    def undo_and_hold():  # the undo has reopened the item but not committed yet when the owner clicks "gold"
        try:
            with transaction.atomic():
                review_undo_last(user=annotator)
                undone.set()
                release.wait(10)
        finally:
            connection.close()

    def mark():
        try:
            outcome["result"] = gold_mark(user=owner, candidate_id=reviewed.pk)
        except GoldError as error:
            outcome["error"] = error
        finally:
            connection.close()

    undo = threading.Thread(target=undo_and_hold)
    undo.start()
    assert undone.wait(10)
    marking = threading.Thread(target=mark)
    marking.start()
    _wait_until_blocked_on_a_lock()
    release.set()
    undo.join(10)
    marking.join(10)

    assert "result" not in outcome, "gold was made from an item the undo had just reopened"
    assert "is not human-approved yet" in outcome["error"].messages[0]
    assert not GoldLabel.objects.exists()
    reviewed.refresh_from_db()
    assert (reviewed.review_state, reviewed.approved_label) == ("pending", "")
