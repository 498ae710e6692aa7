"""The approval state of a candidate has one owner: the model's transitions, backed by database constraints that
refuse any other combination, even for bulk updates; and the migration that added them refuses bad rows first."""

import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction

from labeling.models import Candidate, LabelingRun
from labeling.services import labeling_run_create, review_claim_next, review_submit, review_undo_last
from policyhub import roles

constraints_migration = importlib.import_module("labeling.migrations.0008_approval_state_constraints")


def refused(**changes) -> bool:
    """True if the database refuses this bulk update of the first candidate."""
    try:
        with transaction.atomic():
            Candidate.objects.filter(pk=Candidate.objects.order_by("pk").first().pk).update(**changes)
    except IntegrityError:
        return True
    return False


def test_the_database_refuses_approval_states_no_transition_produces(review_items):
    review_items(1)
    assert refused(review_state="done")  # reviewed, but no approved label
    assert refused(review_state="done", approved_label="no_match", approved_by="teacher")  # the teacher is no human
    assert refused(approved_label="no_match", approved_by="reviewers")  # approved while still waiting for reviews
    assert refused(review_state="", approved_label="no_match", approved_by="")  # a label without its approver
    assert refused(review_state="adjudication", approved_label="no_match", approved_by="adjudicator")
    assert not refused(review_state="done", approved_label="no_match", approved_by="reviewers")
    assert not refused(review_state="", approved_label="no_match", approved_by="teacher")


def test_the_transitions_keep_the_state_consistent_through_review_and_undo(review_items, make_user):
    review_items(1)
    annotator = make_user("ann", roles.ANNOTATOR)
    item = review_claim_next(user=annotator)
    done = review_submit(user=annotator, candidate_id=item.pk, label="no_match")
    assert (done.review_state, done.approved_label, done.approved_by) == ("done", "no_match", "reviewers")
    assert Candidate.objects.human_approved().get() == done
    again = review_undo_last(user=annotator)
    assert (again.review_state, again.approved_label, again.approved_by, again.approved_at) == ("pending", "", "", None)
    assert not Candidate.objects.human_approved().exists()


def test_a_run_row_outside_its_rules_is_refused(review_items):
    run = review_items(1)
    for changes in ({"reviewers_per_item": 4}, {"status": "cancelling"}, {"purpose": "gold_score", "mode": "batch"},
                    {"chunk_size": 0}, {"mode": "offline"}):  # fmt: skip
        with pytest.raises(IntegrityError), transaction.atomic():
            LabelingRun.objects.filter(pk=run.pk).update(**changes)


def test_a_new_runs_candidates_take_the_database_defaults(pairs, published, make_config):
    run = labeling_run_create(version=published, config=make_config(provider="heuristic"), selection={"all": True},
                              enqueue_chunks=False)  # fmt: skip
    rows = Candidate.objects.filter(run=run)
    assert rows.count() == 4
    for c in rows:
        assert (c.status, c.label, c.label_distribution, c.trust, c.samples_ok, c.routing, c.error) == (
            "pending", "", {}, {}, 0, "", "",
        )  # fmt: skip
        assert (c.review_state, c.reviews_needed, c.approved_label, c.approved_by) == ("", 0, "", "")
        assert c.updated_at is not None and not c.reasons


def test_the_migration_names_the_rows_that_break_its_constraints_before_changing_anything(review_items):
    review_items(1)
    candidate = Candidate.objects.get()
    with transaction.atomic():
        with connection.cursor() as cursor:  # ALTER TABLE waits for no deferred check of the fixture's rows
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with connection.schema_editor() as editor:  # a row from before the constraint existed
            editor.remove_constraint(Candidate, next(c for c in Candidate._meta.constraints
                                                     if c.name == "candidate_approval_matches_review"))  # fmt: skip
        Candidate.objects.filter(pk=candidate.pk).update(approved_label="no_match", approved_by="reviewers")
        with pytest.raises(RuntimeError, match=rf"1 candidate row\(s\) break candidate_approval_matches_review "
                                               rf"\(ids {candidate.pk}\)"):  # fmt: skip
            constraints_migration.check_existing_rows(apps, None)
        transaction.set_rollback(True)
    constraints_migration.check_existing_rows(apps, None)  # the rows as they are now pass
