"""A chunk stores its answers while later requests are still in flight: progress shows live, and a crash loses
at most the answers since the last store."""

import pytest
from django.db import connection

from labeling.models import LabelingRun
from labeling.pipeline import chunk
from labeling.services import labeling_run_chunk_process, labeling_run_create
from labeling.teacher import openai_provider


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_counters_move_while_the_chunk_is_still_asking(pairs, published, openai_config, fake_openai, monkeypatch):
    monkeypatch.setattr(chunk, "FLUSH_ANSWERS", 1)
    monkeypatch.setattr(openai_provider, "HANDOFF_ANSWERS", 1)
    seen_by_observer = []

    def respond(request, call_number):
        # runs in the server's thread, on its own database connection: it sees only what was committed
        seen_by_observer.append(LabelingRun.objects.get().samples_done)
        connection.close()  # this thread's own connection; nothing must hold the test database at teardown
        return {"label": "strong_match", "rationale": "Fits.", "cited_rules": []}

    fake_openai.responder = respond
    fake_openai.latency = 0.2
    run = labeling_run_create(
        version=published, config=openai_config(concurrency=1), selection={"all": True}, chunk_size=4
    )
    labeling_run_chunk_process(run_id=run.pk, chunk_index=0)
    assert seen_by_observer[0] == 0
    assert seen_by_observer[-1] >= 2  # stored before the chunk's last request was even sent
    run.refresh_from_db()
    assert (run.status, run.samples_done) == ("succeeded", 4)
