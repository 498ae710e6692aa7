"""Trust-check rates per run and per policy version: counted from runs of a fake teacher (through the real openai
client) that invents facts, obeys planted text and is rude, they equal what reading its answers shows; a clean run
shows zeros; the run page lists the flagged answers (escaped), the version page and the API show the rates."""

import pytest

from labeling.models import Candidate
from labeling.selectors.trust_rates import run_trust_rates, version_trust_rates
from labeling.services import labeling_run_create
from policyhub import services as policy_services

from .trust_teacher import HONEST, Misbehaving, trust_pairs  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("trust_pairs")


@pytest.fixture
def misbehaving_run(published, openai_config, fake_openai, process_run):
    fake_openai.responder = teacher = Misbehaving()
    run = process_run(labeling_run_create(version=published, config=openai_config(), selection={"all": True}))
    return run, teacher.did(run)


def _pair(rate) -> tuple[int, int]:
    return rate.count, rate.total


def test_rates_of_a_misbehaving_run_are_the_failures_in_its_answers(misbehaving_run):
    run, did = misbehaving_run
    assert did["invented"] and did["rude"] and len(did["obeyed"]) == 4 and len(did["injected"]) == 6
    rates = run_trust_rates(run=run)
    assert _pair(rates.hallucination) == (len(did["invented"]), 10)
    assert _pair(rates.tone) == (len(did["rude"]), 10)
    assert _pair(rates.injection) == (6, 10)
    assert _pair(rates.injection_followed) == (4, 6)
    assert rates.judge is None and not rates.has_judge
    flagged = did["invented"] | did["rude"] | did["obeyed"]  # obeyed answers also cite no rule
    assert _pair(rates.any_check) == (len(flagged), 10)
    assert rates.hallucination.rate == pytest.approx(len(did["invented"]) / 10)


def test_a_clean_run_has_zero_rates(published, openai_config, fake_openai, process_run):
    fake_openai.responder = HONEST
    clean = {"pair__job__external_id__in": ["j1", "j2"]}
    run = labeling_run_create(version=published, config=openai_config(), selection={"all": True})
    process_run(run)
    Candidate.objects.filter(run=run).exclude(**clean).delete()  # keep the four pairs without planted text
    rates = run_trust_rates(run=run).as_dict()
    zero = {"count": 0, "total": 4, "rate": 0.0}
    assert {k: rates[k] for k in ("hallucination", "tone", "injection", "any_check")} == dict.fromkeys(
        ("hallucination", "tone", "injection", "any_check"), zero
    )
    assert rates["injection_followed"] == {"count": 0, "total": 0, "rate": None}
    assert rates["judge"] is None and rates["candidates"] == 4


def test_a_judge_failure_rate_counts_only_candidates_the_judge_saw(misbehaving_run):
    run, _ = misbehaving_run
    seen = list(Candidate.objects.filter(run=run).order_by("id")[:4])
    for n, candidate in enumerate(seen):  # what the judge helper writes: trust["judge_verdict"]
        candidate.trust["judge_verdict"] = {"ok": n != 0, "detail": "" if n else "label contradicts R1"}
        Candidate.objects.filter(pk=candidate.pk).update(trust=candidate.trust)
    assert run_trust_rates(run=run).judge.as_dict() == {"count": 1, "total": 4, "rate": 0.25}


def test_a_version_adds_up_its_labeling_runs_and_lists_scoring_runs_apart(
    misbehaving_run, published, openai_config, fake_openai, process_run
):
    run, did = misbehaving_run
    fake_openai.responder = HONEST
    # other models: the response cache would hand them the first run's answers
    honest = openai_config("honest", model="honest-teacher")
    second = process_run(labeling_run_create(version=published, config=honest, selection={"all": True}))
    fake_openai.responder = Misbehaving()
    scorer = openai_config("scorer", model="scorer")
    scoring = process_run(
        labeling_run_create(version=published, config=scorer, selection={"all": True}, purpose="gold_score")
    )
    rates = version_trust_rates(version=published)
    assert [r.run.pk for r in rates.runs] == [run.pk, second.pk, scoring.pk]
    assert _pair(rates.total.hallucination) == (len(did["invented"]), 20)  # the honest run invents nothing
    assert _pair(rates.total.injection) == (12, 20) and _pair(rates.total.injection_followed) == (4, 12)
    assert rates.runs[2].rates.counts["labeled"] == 10  # listed, not counted
    assert rates.as_dict()["counted_runs"] == [run.pk, second.pk]


def test_the_run_page_shows_the_rates_and_the_flagged_answers_escaped(misbehaving_run, engineer, client_for):
    run, did = misbehaving_run
    html = client_for(engineer).get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-trust"' in html
    invented = len(did["invented"])
    row = '<tr data-rate="hallucination">\n    <td>Hallucination (an ungrounded claim)</td>\n    '
    assert f'{row}<td class="num">{invented}</td><td class="num">10</td>' in html
    assert '<tr data-rate="judge">' in html and "no judge" in html
    flagged = did["invented"] | did["rude"] | did["obeyed"] | did["injected"]
    rows = Candidate.objects.filter(run=run, pair_id__in=flagged)
    assert html.count("<tr data-candidate=") == len(flagged)
    assert all(f'<tr data-candidate="{c.pk}">' in html for c in rows)
    assert "<strong>facts_grounded</strong>: not in this member or job: " in html
    assert "<strong>tone</strong>: flagged words: lazy" in html
    assert "a lazy &lt;b&gt;profile&lt;/b&gt;." in html and "<b>profile</b>" not in html  # user text is escaped
    assert "&lt;|im_start|&gt;" in html  # the planted span is shown, escaped


def test_the_flagged_list_is_paginated(misbehaving_run, engineer, client_for, monkeypatch):
    run, did = misbehaving_run
    from labeling.views import runs as run_views

    monkeypatch.setattr(run_views, "FLAGGED_PER_PAGE", 3)
    client = client_for(engineer)
    total = len(did["invented"] | did["rude"] | did["obeyed"] | did["injected"])
    first = client.get(f"/runs/{run.pk}/").content.decode()
    last = client.get(f"/runs/{run.pk}/?flagged_page={-(-total // 3)}").content.decode()
    assert first.count("<tr data-candidate=") == 3 and f"({total} flagged)" in first
    assert last.count("<tr data-candidate=") == total - 3 * (-(-total // 3) - 1)


def test_the_api_shows_a_runs_rates_and_a_versions(misbehaving_run, published, engineer, client):
    run, did = misbehaving_run
    token = policy_services.api_token_create(user=engineer, name="t").raw
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    trust = client.get(f"/api/runs/{run.pk}", **auth).json()["trust"]
    assert trust["hallucination"]["count"] == len(did["invented"]) and trust["injection_followed"]["total"] == 6
    assert trust["judge"] is None
    version = client.get("/api/policies/match/versions/1/trust", **auth)
    assert version.status_code == 200
    body = version.json()
    assert (body["policy"], body["version"], body["counted_runs"]) == ("match", 1, [run.pk])
    assert body["tone"] == trust["tone"] and body["runs"][0]["id"] == run.pk


def test_the_version_page_shows_the_rates(misbehaving_run, published, annotator, client_for):
    run, did = misbehaving_run
    html = client_for(annotator).get("/policies/match/v1/").content.decode()
    assert 'id="version-trust"' in html and f'<tr data-run="{run.pk}">' in html
    assert f"<td>{len(did['invented'])}/10</td><td>6/10</td>" in html


@pytest.mark.parametrize(
    ("who", "number", "status"),
    [
        ("anonymous", 1, 401),
        ("nobody", 1, 403),
        ("annotator", 2, 404),  # the draft: readers who may not see drafts do not learn it exists
        ("annotator", 9, 404),
        ("annotator", 1, 200),
        ("owner", 2, 200),
        ("engineer", 1, 200),
    ],
)
def test_the_version_trust_endpoint_checks_role_and_version(who, number, status, published, client, request):
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))  # a session: a user without a role has no API token
    response = client.get(f"/api/policies/match/versions/{number}/trust")
    assert response.status_code == status, response.content
    if status == 404:
        assert "no version" in response.json()["detail"]
