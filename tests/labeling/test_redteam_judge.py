"""A red-team run with a judge: every part is judged by a second LLM config through the run engine's own judge
(the fake server's honest judge behind the real openai client), which sees the variant's facts the teacher saw;
an answer the judge finds ungrounded is flagged in the report, an honest teacher's answers are not. The plan
counts the judge's requests; a judge that is no LLM is refused with a message and nothing is created."""

import re
from decimal import Decimal

from django.test import Client

from labeling.models import Candidate, LabelingRun, RedTeamRun, RedTeamVariant
from labeling.selectors.redteam_report import red_team_report
from labeling.services.redteam import red_team_run_start
from tests.api_roles import bearer

from .conftest import answer
from .redteam_helpers import process_all

INVENTED = "Holds a CISSP from Google and led Kubernetes at Oracle."


def _start(owner, rt_set, published, teacher, judge):
    return process_all(red_team_run_start(user=owner, red_team_set=rt_set, version=published, config=teacher,
                                          judge=judge))  # fmt: skip


def test_the_judge_flags_invented_claims_on_variants_and_sees_the_variants_facts(
    owner, published, rt_set, openai_config, fake_openai
):
    fake_openai.responder = answer("strong_match", rationale=INVENTED)
    teacher = openai_config()
    judge = openai_config("judge", model="fake-judge", price_input_per_mtok=Decimal("3"))
    run = _start(owner, rt_set, published, teacher, judge)
    assert run.status == "succeeded" and RedTeamRun.objects.get(pk=run.pk).judge_config == judge
    assert set(run.runs.values_list("judge_config", flat=True)) == {judge.pk}
    for candidate in Candidate.objects.filter(run__red_team_run=run):
        verdict = candidate.trust["judge_verdict"]
        assert verdict["ok"] is False and verdict["detail"].startswith("unsupported claims: "), verdict
    report = red_team_report(run=run)
    assert all(f.flagged.count == f.decided == 8 for f in report.categories.values())
    assert (report.clean_flagged.count, report.clean_flagged.total) == (8, 8)
    # the judge was shown what the teacher saw: a protected-attribute variant's cue, not the clean summary
    judged = [r["messages"][1]["content"] for r in fake_openai.judge_requests()]
    assert {r["model"] for r in fake_openai.judge_requests()} == {"fake-judge"}
    for variant in RedTeamVariant.objects.filter(red_team_set=rt_set, category="protected_attribute"):
        cue = variant.member["summary"].rsplit(". ", 1)[-1]
        assert any(cue in text for text in judged), cue
    assert sum(p.judge_requests for p in run.runs.all()) == 40
    judge_cost = sum(p.judge_cost for p in run.runs.all())
    assert judge_cost > 0 and report.cost == sum(p.cost for p in run.runs.all()) + judge_cost  # counted in the cost


def test_an_honest_teachers_answers_pass_the_judge_and_nothing_is_flagged(
    owner, published, rt_set, openai_config, fake_openai
):
    fake_openai.responder = answer("strong_match")  # "The profile fits the posting.", citing R1
    run = _start(owner, rt_set, published, openai_config(), openai_config("judge"))
    assert all(c.trust["judge_verdict"] == {"ok": True, "detail": ""}
               for c in Candidate.objects.filter(run__red_team_run=run))  # fmt: skip
    report = red_team_report(run=run)
    # injection variants are flagged by the input-side injection check, not by the judge; nothing else is
    assert {c: f.flagged.count for c, f in report.categories.items()} == {
        "injection": 8, "protected_attribute": 0, "irrelevant_noise": 0, "hallucination_bait": 0,
    }  # fmt: skip
    assert report.clean_flagged.count == 0


def test_the_api_plans_and_starts_a_judged_run_and_refuses_a_judge_that_is_no_llm(
    owner, published, rt_set, openai_config, make_config, fake_openai
):
    openai_config()
    openai_config("judge", model="fake-judge")
    make_config("rules", provider="heuristic")
    api = Client(**bearer(owner))
    body = {"set": rt_set.pk, "version": 1, "teacher": "fake"}
    plain = api.post("/api/redteam/runs/plan", body, content_type="application/json").json()
    judged = api.post("/api/redteam/runs/plan", {**body, "judge": "judge"}, content_type="application/json").json()
    assert (plain["judge"], plain["judge_requests"]) == (None, 0)
    assert (judged["judge"], judged["judge_requests"]) == ("judge", 40)
    assert [p["judge_requests"] for p in judged["parts"]] == [8] * 5
    assert float(judged["estimated_cost"]) >= float(plain["estimated_cost"])
    for bad, status, text in (({"judge": "rules"}, 400, "The judge must be an LLM teacher config"),
                              ({"judge": "nope"}, 404, "No teacher config 'nope'.")):  # fmt: skip
        for path in ("/api/redteam/runs/plan", "/api/redteam/runs"):
            refused = api.post(path, {**body, **bad}, content_type="application/json")
            assert refused.status_code == status and text in refused.json()["detail"], (path, refused.content)
    assert not RedTeamRun.objects.exists() and not LabelingRun.objects.exists()
    started = api.post("/api/redteam/runs", {**body, "judge": "judge"}, content_type="application/json")
    assert started.status_code == 201 and started.json()["judge"] == "judge"
    assert set(LabelingRun.objects.values_list("judge_config__name", flat=True)) == {"judge"}


def test_the_pages_plan_and_start_a_judged_run(client, owner, published, rt_set, openai_config, fake_openai):
    teacher, judge = openai_config(), openai_config("judge")
    client.force_login(owner)
    listing = client.get("/policies/match/redteam/").content.decode()
    assert re.search(rf'<select name="judge" id="redteam-judge"><option value="">None</option>.*value="{judge.pk}"',
                     listing)  # fmt: skip
    query = {"set": rt_set.pk, "version": published.pk, "config": teacher.pk, "judge": judge.pk}
    plan = client.get("/policies/match/redteam/plan/", query).content.decode()
    assert "judged by judge" in plan and '<td id="plan-judge-requests">40</td>' in plan
    assert f'<input type="hidden" name="judge" value="{judge.pk}">' in plan
    started = client.post("/policies/match/redteam/start/", query, follow=True)
    run = RedTeamRun.objects.get()
    assert run.judge_config == judge and 'judged by <span id="redteam-judge">judge</span>' in started.content.decode()
    bad = client.get("/policies/match/redteam/plan/", {**query, "judge": 99999})
    assert bad.status_code == 400 and "Choose a judge among the teacher configs" in bad.content.decode()
