"""Cancelling and resuming a whole red-team run (policy owners, from its page and the API): cancelling cancels
every unfinished part with the runs' own cancel, resuming resumes the cancelled and failed parts; the run's
status is its parts'. On real workers the cancel stops the teacher mid-run and the resume finishes it without
asking anything twice."""

import re
import sys
import time

import pytest
from django.test import Client

from labeling.models import LabelingRun, RedTeamRun
from labeling.services import labeling_run_chunk_process, labeling_run_fail
from labeling.services.redteam import RedTeamError, red_team_run_cancel, red_team_run_resume, red_team_run_start
from tests.api_roles import CALLERS, caller_headers, expect_refused
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

from .redteam_helpers import process_all


def _parts(run) -> dict[str, str]:
    return {p.red_team_category or "clean": p.status for p in LabelingRun.objects.filter(red_team_run=run)}


def test_cancel_stops_the_unfinished_parts_and_resume_finishes_them(owner, published, rt_set, openai_config,
                                                                    fake_openai):  # fmt: skip
    run = red_team_run_start(user=owner, red_team_set=rt_set, version=published, config=openai_config())
    clean = run.runs.get(red_team_category="")
    labeling_run_chunk_process(run_id=clean.pk, chunk_index=0)
    red_team_run_cancel(user=owner, run=run)
    assert _parts(run) == {"clean": "succeeded", "injection": "cancelled", "protected_attribute": "cancelled",
                           "irrelevant_noise": "cancelled", "hallucination_bait": "cancelled"}  # fmt: skip
    assert RedTeamRun.objects.get(pk=run.pk).status == "cancelled"
    for part in run.runs.exclude(pk=clean.pk):  # a queued chunk of a cancelled part does not start
        assert labeling_run_chunk_process(run_id=part.pk, chunk_index=0) == "run is cancelled"
    with pytest.raises(RedTeamError, match="no part is queued or running, nothing to cancel"):
        red_team_run_cancel(user=owner, run=run)
    asked = len(fake_openai.chat_requests())
    assert asked == 8

    red_team_run_resume(user=owner, run=run)
    assert RedTeamRun.objects.get(pk=run.pk).status == "running"
    assert _parts(run)["clean"] == "succeeded"
    process_all(run)
    assert RedTeamRun.objects.get(pk=run.pk).status == "succeeded"
    assert len(fake_openai.chat_requests()) == 40  # the clean part was not asked again
    with pytest.raises(RedTeamError, match="no part was cancelled or failed, nothing to resume"):
        red_team_run_resume(user=owner, run=run)


def test_resume_resumes_a_failed_part_only(owner, published, rt_set, openai_config, fake_openai):
    run = red_team_run_start(user=owner, red_team_set=rt_set, version=published, config=openai_config())
    noise = run.runs.get(red_team_category="irrelevant_noise")
    labeling_run_fail(run_id=noise.pk, error="the teacher went away")
    assert RedTeamRun.objects.get(pk=run.pk).status == "failed"  # one failed part: the run failed
    before = {p.pk: p.status for p in run.runs.all()}
    red_team_run_resume(user=owner, run=run)
    after = {p.pk: p.status for p in run.runs.all()}
    assert after[noise.pk] == "running" and LabelingRun.objects.get(pk=noise.pk).error == ""
    assert {k: v for k, v in after.items() if k != noise.pk} == {k: v for k, v in before.items() if k != noise.pk}
    process_all(run)
    assert RedTeamRun.objects.get(pk=run.pk).status == "succeeded"


def test_only_policy_owners_cancel_and_resume(owner, engineer, annotator, nobody, published, rt_set, openai_config,
                                              fake_openai, client):  # fmt: skip
    run = red_team_run_start(user=owner, red_team_set=rt_set, version=published, config=openai_config())
    for user in (engineer, annotator):
        with pytest.raises(Exception, match="Only policy owners can cancel or resume red-team runs."):
            red_team_run_cancel(user=user, run=run)
    # the API
    for action in ("cancel", "resume"):
        for caller in CALLERS:
            headers = caller_headers(caller, annotator=annotator, engineer=engineer, owner=owner)
            if caller == "policy_owner":
                continue
            response = client.post(f"/api/redteam/runs/{run.pk}/{action}", **headers)
            expect_refused(response, caller, {"policy_owner"})
    # the pages: anonymous to the login page, other roles 403
    for action in ("cancel", "resume"):
        client.logout()
        assert client.post(f"/redteam/runs/{run.pk}/{action}/").status_code == 302
        for user in (engineer, annotator, nobody):
            client.force_login(user)
            assert client.post(f"/redteam/runs/{run.pk}/{action}/").status_code == 403
            assert client.get(f"/redteam/runs/{run.pk}/{action}/").status_code in (403, 405)
    assert set(_parts(run).values()) == {"running"}  # nothing above changed a part
    client.force_login(engineer)
    assert "redteam-cancel" not in client.get(f"/redteam/runs/{run.pk}/").content.decode()
    # an owner's API call: 200 with the run, then 400 with the reason; an unknown run is a 404
    api = caller_headers("policy_owner", annotator=annotator, engineer=engineer, owner=owner)
    cancelled = client.post(f"/api/redteam/runs/{run.pk}/cancel", **api)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert {p["status"] for p in cancelled.json()["runs"]} == {"cancelled"}
    again = client.post(f"/api/redteam/runs/{run.pk}/cancel", **api)
    assert again.status_code == 400 and "nothing to cancel" in again.json()["detail"]
    assert client.post("/api/redteam/runs/99999/resume", **api).status_code == 404
    resumed = client.post(f"/api/redteam/runs/{run.pk}/resume", **api)
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"


def test_a_run_on_the_draft_is_not_found_by_an_ml_engineer(owner, engineer, policy, rt_set, openai_config,
                                                           fake_openai):  # fmt: skip
    draft = policy.versions.get(number=2)
    run = red_team_run_start(user=owner, red_team_set=rt_set, version=draft, config=openai_config())
    client = Client()
    client.force_login(engineer)
    assert client.post(f"/redteam/runs/{run.pk}/cancel/").status_code == 403  # the role, before the object
    assert set(_parts(run).values()) == {"running"}


# --- on real workers -------------------------------------------------------------------------------------------
def _settled(worker, server) -> int:
    """The number of teacher requests once it stopped growing for a second."""
    seen = [-1]

    def still():
        time.sleep(1)
        now = len(server.chat_requests())
        stable = now == seen[-1]
        seen.append(now)
        return stable

    worker.wait_for(still, "the teacher to stop being asked")
    return seen[-1]


def _csrf(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_on_real_workers_cancel_from_the_api_stops_the_teacher_and_resume_from_the_page_finishes(
    owner, annotator, engineer, published, rt_set, make_config, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "test")  # the start checks the config before queueing
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"})
    api = caller_headers("policy_owner", annotator=annotator, engineer=engineer, owner=owner)
    with FakeOpenAI(latency=0.15) as server:
        make_config(base_url=server.base_url, request_timeout=10, concurrency=1)
        try:
            worker.start()
            body = {"set": rt_set.pk, "version": 1, "teacher": "fake"}
            started = Client().post("/api/redteam/runs", body, content_type="application/json", **api).json()
            run = RedTeamRun.objects.get(pk=started["id"])
            worker.wait_for(lambda: len(server.chat_requests()) >= 3, "the first answers")
            cancelled = Client().post(f"/api/redteam/runs/{run.pk}/cancel", **api)
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.content
            # the worker stops asking: the count settles well short of the 40 requests of the whole run
            asked = _settled(worker, server)
            assert asked < 40
            assert "succeeded" not in {s for c, s in _parts(run).items() if c != "clean"}
            assert RedTeamRun.objects.get(pk=run.pk).status == "cancelled"

            browser = Client(enforce_csrf_checks=True)
            browser.force_login(owner)
            page = browser.get(f"/redteam/runs/{run.pk}/").content.decode()
            assert 'id="redteam-resume"' in page and 'id="redteam-cancel"' not in page
            assert browser.post(f"/redteam/runs/{run.pk}/resume/").status_code == 403  # no CSRF token
            assert RedTeamRun.objects.get(pk=run.pk).status == "cancelled"
            done = browser.post(f"/redteam/runs/{run.pk}/resume/", {"csrfmiddlewaretoken": _csrf(page)}, follow=True)
            assert f"Red-team run #{run.pk} resumed." in done.content.decode()
            worker.wait_for(lambda: RedTeamRun.objects.get(pk=run.pk).status == "succeeded", "the resumed run")
        finally:
            worker.stop()
            sys.stdout.write(worker.log())
        prompts = [r["messages"][1]["content"] for r in server.chat_requests()]
    assert len(prompts) == 40 and len(set(prompts)) == 40  # nothing was asked twice
    report = Client()
    report.force_login(owner)
    html = report.get(f"/redteam/runs/{run.pk}/").content.decode()
    assert 'data-status="succeeded"' in html and "32 variants" in html
    assert 'id="redteam-resume"' not in html and 'id="redteam-cancel"' not in html
