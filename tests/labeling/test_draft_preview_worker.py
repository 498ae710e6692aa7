"""A draft preview on a real Celery worker: the page shows figures and flips after the first chunks while later
ones are still being asked, then stops polling with the final figures."""

import re
import sys

import pytest

from labeling.models import DraftPreview
from labeling.selectors import previews as gold_selectors
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

from .gold_helpers import DRAFT_MARK, make_gold, pair_of
from .test_draft_preview import edit_draft

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MEMBERS = ["m1", "m2", "m3", "m4", "m5", "m6"]
CHANGED = {"m2", "m5"}  # the draft says no_match for these members' pairs, the published version strong_match


def responder(request, call_number):
    member, job = pair_of(request)
    label = "no_match" if DRAFT_MARK in request["messages"][0]["content"] and member in CHANGED else "strong_match"
    return {"label": label, "rationale": f"{label} for {member}×{job}.", "cited_rules": ["R1"]}


def test_the_preview_page_fills_in_while_the_worker_labels(
    do_import, policy, owner, make_config, client_for, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "test")  # the web process checks the config before queueing
    members = "member_id,headline\n" + "".join(f"{m},Member {m}\n" for m in MEMBERS)
    assert do_import("members", "members.csv", members).ok
    assert do_import("jobs", "jobs.csv", "job_id,title,description\nj1,Engineer,Build\nj2,Nurse,Care\n").ok
    assert do_import("pairs", "pairs.csv", "member_id,job_id\n" + "".join(f"{m},j1\n{m},j2\n" for m in MEMBERS)).ok
    make_gold(policy, {(m, j): "no_match" if m in CHANGED else "strong_match" for m in MEMBERS for j in ("j1", "j2")})
    edit_draft(policy, owner, f"# Match policy\n\n{DRAFT_MARK}\n")
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"})
    with FakeOpenAI(latency=0.15) as server:
        server.responder = responder
        config = make_config(base_url=server.base_url, concurrency=1, request_timeout=10)
        try:
            worker.start()
            client = client_for(owner)
            started = client.post("/policies/match/draft/gold-preview/start/", {"config": config.pk})
            assert started.status_code == 302
            preview = DraftPreview.objects.get()

            def progress():
                html = client.get(started.url, HTTP_HX_REQUEST="true").content.decode()
                done = int(re.search(r'id="draft-progress">(\d+) of 12<', html).group(1))
                return html if 0 < done < 12 else None

            midway = worker.wait_for(progress, "the first draft chunk to be stored")
            assert 'hx-trigger="every 1s"' in midway
            assert '<strong id="draft-progress">10 of 12</strong>' in midway  # one chunk of 10 pairs stored

            state = worker.wait_for(
                lambda: (
                    (s := gold_selectors.draft_preview_state(preview=preview, target_precision=0.95)).finished and s
                ),
                "the preview to finish",
            )
            assert (state.draft_evaluation.accuracy.accuracy, state.published_evaluation.accuracy.accuracy) == (
                1.0, 8 / 12,
            )  # fmt: skip
            assert sorted(f.pair.member.external_id for f in state.flips) == ["m2", "m2", "m5", "m5"]
            final = client.get(started.url).content.decode()
            assert "hx-trigger" not in final and final.count('<tr data-pair="') == 4
            assert len(server.chat_requests()) == 24
        finally:
            worker.stop()
            sys.stdout.write(worker.log())
