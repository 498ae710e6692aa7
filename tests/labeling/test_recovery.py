"""What the watchdog counts as stuck, what it re-sends and what it leaves alone; resuming a stuck running run.

Service tests on the database: nothing reaches a worker here (messages go out after commit, and these tests
never commit), so what was re-sent is read from the rows the recovery writes.
"""

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from labeling.models import BatchJob, LabelingRun, RunChunk
from labeling.selectors import run_stuck_chunks
from labeling.services import import_file, labeling_run_batch_poll, labeling_run_create, labeling_run_resume, recovery
from policyhub.leases import Sweep

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(minutes=10)


@pytest.fixture
def run(policy, make_config):
    for kind, text in (
        ("members", "member_id,headline,skills\n" + "".join(f"m{i},Engineer,Python\n" for i in range(4))),
        ("jobs", "job_id,title,description\nj1,Data engineer,Pipelines\n"),
        ("pairs", "member_id,job_id\n" + "".join(f"m{i},j1\n" for i in range(4))),
    ):
        assert import_file(kind=kind, stream=io.BytesIO(text.encode()), name=f"{kind}.csv").ok
    made = labeling_run_create(version=policy.versions.get(number=1), config=make_config(), selection={"all": True},
                               chunk_size=1)  # fmt: skip
    assert made.chunks.count() == 4
    return made


def _chunks(run, **fields) -> None:
    now = timezone.now()
    states = {
        0: {"lease_until": now + timedelta(seconds=30), "lease_token": "a"},  # a live worker holds it
        1: {"lease_until": now - timedelta(seconds=1), "lease_token": "b"},  # its worker stopped renewing
        2: {"lease_until": None, "queued_at": now - LONG_AGO},  # queued long ago, never taken
        3: {"lease_until": None, "queued_at": now},  # just queued
    }
    for index, state in states.items():
        RunChunk.objects.filter(run=run, index=index).update(**{"queued_at": now - LONG_AGO, **state, **fields})


def _requeued(run) -> list[int]:
    now = timezone.now()
    return sorted(run.chunks.filter(queued_at__gt=now - timedelta(seconds=5)).exclude(index=3)
                  .values_list("index", flat=True))  # fmt: skip


def test_an_expired_lease_is_re_queued_while_live_and_waiting_chunks_are_left_alone(run):
    _chunks(run)
    busy = Sweep(now=timezone.now(), queue_idle=False)  # messages wait in the broker: chunk 2's may be among them
    assert recovery.chunks_requeue(chunks=recovery.stuck_chunks(sweep=busy), now=busy.now) == 1
    assert _requeued(run) == [1]
    chunk = run.chunks.get(index=1)
    assert chunk.lease_until is None and chunk.lease_token == "b"  # a late but live holder may renew it
    run.refresh_from_db()
    assert run.recoveries == 1 and run.recovery_note.startswith("1 chunk was stuck; the watchdog re-queued it at")


def test_with_nothing_waiting_in_the_broker_a_chunk_never_taken_is_re_queued_too(run):
    _chunks(run)
    idle = Sweep(now=timezone.now(), queue_idle=True)
    assert recovery.chunks_requeue(chunks=recovery.stuck_chunks(sweep=idle), now=idle.now) == 2
    assert _requeued(run) == [1, 2]
    run.refresh_from_db()
    assert run.recoveries == 2 and run.recovery_note.startswith("2 chunks were stuck")
    again = Sweep(now=timezone.now(), queue_idle=True)  # the next sweep: just re-sent, so not again
    assert recovery.stuck_chunks(sweep=again).count() == 0


def test_nothing_is_stuck_in_a_run_that_is_not_running_or_whose_chunks_are_done(run):
    _chunks(run)
    idle = Sweep(now=timezone.now(), queue_idle=True)
    LabelingRun.objects.filter(pk=run.pk).update(status="cancelled")
    assert recovery.stuck_chunks(sweep=idle).count() == 0
    LabelingRun.objects.filter(pk=run.pk).update(status="running")
    run.chunks.update(status="done")
    assert recovery.stuck_chunks(sweep=idle).count() == 0


def test_the_run_page_counts_stuck_chunks_only_when_the_run_is_not_moving(run):
    _chunks(run)
    assert run_stuck_chunks(run=run) == 1  # chunk 0 is live: the rest may be waiting their turn
    run.chunks.filter(index=0).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert run_stuck_chunks(run=run) == 3  # nothing moves: expired leases and the chunk never taken


def test_resume_re_queues_a_stuck_running_run_and_refuses_one_whose_chunks_are_all_held(run):
    _chunks(run)
    resumed = labeling_run_resume(run=run)
    assert resumed.status == "running" and resumed.recoveries == 3  # every chunk no live lease holds
    assert "resuming re-queued them" in resumed.recovery_note
    run.chunks.update(lease_until=timezone.now() + timedelta(seconds=30))
    with pytest.raises(ValidationError, match="workers hold every chunk it is waiting for"):
        labeling_run_resume(run=run)


def test_an_overdue_batch_poll_starts_a_new_chain_and_the_late_old_chain_ends(run, settings):
    LabelingRun.objects.filter(pk=run.pk).update(mode="batch")
    old = timezone.now() - LONG_AGO
    job = BatchJob.objects.create(run=run, attempt=1, openai_batch_id="batch_1", input_file_id="file_1",
                                  submitted_at=old, polled_at=old, queued_at=old)  # fmt: skip
    sweep = Sweep(now=timezone.now(), queue_idle=False)
    assert recovery.batch_runs_requeue(sweep=sweep) == 1
    run.refresh_from_db()
    assert run.batch_poll_chain and run.recoveries == 1 and "Its batch was not polled since" in run.recovery_note
    assert labeling_run_batch_poll(run_id=run.pk) == "a newer chain of polls carries on"
    assert recovery.batch_runs_requeue(sweep=Sweep(now=timezone.now(), queue_idle=False)) == 0  # re-sent just now
    BatchJob.objects.filter(pk=job.pk).update(polled_at=timezone.now(), queued_at=old)
    assert recovery.batch_runs_requeue(sweep=Sweep(now=timezone.now(), queue_idle=False)) == 0  # polled: alive


def test_the_run_page_offers_resume_for_a_stuck_running_run_and_resuming_there_re_queues_it(run, engineer, client_for):
    client = client_for(engineer)
    run.chunks.update(lease_until=timezone.now() + timedelta(seconds=30), lease_token="a")  # all held: healthy
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "is stuck" not in page and "Resume run" not in page
    _chunks(run)
    run.chunks.filter(index=0).update(lease_until=timezone.now() - timedelta(seconds=1))
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "3 chunks are stuck: no worker holds them." in page and "Resume run" in page
    response = client.post(f"/runs/{run.pk}/resume/", follow=True)
    page = response.content.decode()
    assert f"Run #{run.pk} resumed." in page and "chunks were stuck; resuming re-queued them at" in page
    assert "is stuck" not in page  # re-sent just now: given a lease's time before it counts as stuck again


def test_the_api_reports_stuck_chunks_and_what_the_recovery_did(run, engineer, client):
    from policyhub.services import api_token_create

    _chunks(run)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=engineer, name='t').raw}"}
    before = client.get(f"/api/runs/{run.pk}", **auth).json()
    assert (before["stuck_chunks"], before["recoveries"], before["recovery_note"]) == (1, 0, "")
    after = client.post(f"/api/runs/{run.pk}/resume", **auth).json()
    assert after["recoveries"] == 3 and after["recovery_note"].startswith("3 chunks were stuck; resuming")
