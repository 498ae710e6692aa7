"""Two runs of different teachers labeling the same pairs at the same moment still see each other: the later
writer flags teacher_disagreement on both. Real threads, each with its own PostgreSQL connection."""

import contextlib
import threading

import pytest
from django.db import connection

from labeling.models import Candidate
from labeling.pipeline import answers
from labeling.services import labeling_run_create, runs

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_simultaneous_runs_of_two_teachers_flag_their_disagreement(
    pairs, published, openai_config, fake_openai, monkeypatch
):
    fake_openai.responder = lambda request, n: {
        "label": "strong_match" if request["model"] == "teacher-a" else "no_match",
        "rationale": "Python.", "cited_rules": ["R1"],
    }  # fmt: skip
    run_a, run_b = (
        labeling_run_create(version=published, config=openai_config(name, model=f"teacher-{name}"),
                            selection={"all": True})
        for name in ("a", "b")
    )  # fmt: skip

    # Make the race certain: after reading the other teacher's labels, each writer waits (up to 3 s) for the other
    # to have read too before it writes and commits. Unprotected, both read before either commits.
    both_read = threading.Barrier(2, timeout=3)
    read_labels = answers.other_run_labels

    def read_then_wait(run, pair_ids):
        labels = read_labels(run, pair_ids)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait()
        return labels

    monkeypatch.setattr(answers, "other_run_labels", read_then_wait)
    errors = []

    def process(run):
        try:
            runs.labeling_run_chunk_process(run_id=run.pk, chunk_index=0)
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=process, args=(run,)) for run in (run_a, run_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    candidates = Candidate.objects.filter(run__in=[run_a, run_b])
    assert candidates.count() == 8 and set(candidates.values_list("status", flat=True)) == {"labeled"}
    assert set(candidates.values_list("reason_teacher_disagreement", "routing")) == {(True, "needs_review")}
