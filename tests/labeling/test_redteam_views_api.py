"""Red-team pages and API: policy owners create sets and start runs (plan first; Idempotency-Key on the API), ML
engineers read reports of published versions, annotators and users without a role get 403, anonymous callers go
to the login page (API: 401); a run on a draft is the policy owners' only; user text is escaped; bad input is a
4xx with a message and writes nothing."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from labeling.models import LabelingRun, RedTeamRun, RedTeamSet
from policyhub.services import api_token_create
from tests.fakes.openai_server import BiasedResponder

from .redteam_helpers import process_all, start_and_process


def _api(user):
    """A client with the user's API token (a user without a role may hold none: their browser session)."""
    client = Client()
    if user is None:
        return client
    try:
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {api_token_create(user=user, name='t').raw}"
    except PermissionDenied:
        client.force_login(user)
    return client


@pytest.fixture
def finished(owner, published, rt_set, openai_config, fake_openai):
    fake_openai.responder = BiasedResponder()
    return start_and_process(owner, rt_set, published, openai_config())


@pytest.fixture
def on_draft(owner, policy, rt_set, openai_config, fake_openai):
    """An honest teacher's red-team run of the draft."""
    fake_openai.responder = None
    return start_and_process(owner, rt_set, policy.versions.get(number=2), openai_config("draft-teacher"))


# --- pages -----------------------------------------------------------------------------------------------------
def test_page_role_matrix(client, owner, engineer, annotator, nobody, finished, on_draft):
    other = finished.pk
    pages = [
        "/policies/match/redteam/",
        f"/redteam/runs/{finished.pk}/",
        f"/redteam/runs/{finished.pk}/compare/?with={other}",
    ]
    for path in pages:
        client.logout()
        assert client.get(path).status_code == 302  # to the login page
        for user, status in ((owner, 200), (engineer, 200), (annotator, 403), (nobody, 403)):
            client.force_login(user)
            assert client.get(path).status_code == status, (path, user.username)
    owner_only_get = f"/policies/match/redteam/plan/?set={finished.red_team_set_id}&version=1"
    posts = ["/policies/match/redteam/sets/new/", "/policies/match/redteam/start/"]
    for user in (engineer, annotator, nobody):
        client.force_login(user)
        assert client.get(owner_only_get).status_code == 403
        for path in posts:
            assert client.post(path, {"seed": 1, "size": 1, "categories": ["injection"]}).status_code == 403
    # a run on the draft: its owners' only; to an ML engineer it does not exist
    client.force_login(engineer)
    assert client.get(f"/redteam/runs/{on_draft.pk}/").status_code == 404
    assert f'data-run="{on_draft.pk}"' not in client.get("/policies/match/redteam/").content.decode()
    client.force_login(owner)
    assert client.get(f"/redteam/runs/{on_draft.pk}/").status_code == 200


def test_the_report_page_shows_rates_flips_and_examples(client, engineer, finished):
    client.force_login(engineer)
    html = client.get(f"/redteam/runs/{finished.pk}/").content.decode()
    assert 'data-status="succeeded"' in html and "hx-trigger" not in html
    assert '<tr data-category="protected_attribute"><td>protected_attribute</td>' in html
    assert '<td class="attack">8 / 8 (100%)</td>' in html
    assert '<td id="flip-total">8 / 8</td>' in html
    assert "label changed:" in html and '<pre class="variant-diff">' in html


def test_owners_create_a_set_plan_and_start_a_run_from_the_pages(client, owner, published, rt_pairs, openai_config,
                                                                 fake_openai):  # fmt: skip
    config = openai_config()
    client.force_login(owner)
    created = client.post("/policies/match/redteam/sets/new/", {
        "name": "<b>bold</b>", "seed": 3, "size": 4, "categories": ["injection", "irrelevant_noise"],
    })  # fmt: skip
    assert created.status_code == 302
    red_team_set = RedTeamSet.objects.get()
    listing = client.get("/policies/match/redteam/").content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in listing and "<b>bold</b>" not in listing
    plan = client.get(f"/policies/match/redteam/plan/?set={red_team_set.pk}&version={published.pk}&config={config.pk}")
    html = plan.content.decode()
    assert plan.status_code == 200 and '<td id="plan-requests">12</td>' in html  # 4 clean + 4 + 4 variants
    assert not fake_openai.chat_requests()  # planning asks nothing
    assert 'data-part="injection"' in html and "csrfmiddlewaretoken" in html
    started = client.post("/policies/match/redteam/start/",
                          {"set": red_team_set.pk, "version": published.pk, "config": config.pk})  # fmt: skip
    run = RedTeamRun.objects.get()
    assert started.status_code == 302 and started.url == f"/redteam/runs/{run.pk}/"
    running = client.get(started.url).content.decode()
    assert 'hx-trigger="every 2s"' in running
    process_all(run)
    assert 'data-status="succeeded"' in client.get(started.url, HTTP_HX_REQUEST="true").content.decode()


def test_bad_page_input_is_refused_with_a_message_and_nothing_written(client, owner, published, rt_set,
                                                                      openai_config):  # fmt: skip
    client.force_login(owner)
    before = RedTeamSet.objects.count()
    refused = client.post("/policies/match/redteam/sets/new/", {"seed": 1, "size": 999, "categories": ["injection"]})
    assert refused.status_code == 400 and "larger than the 24 pairs available" in refused.content.decode()
    assert RedTeamSet.objects.count() == before
    no_config = client.post("/policies/match/redteam/start/", {"set": rt_set.pk, "version": published.pk})
    assert no_config.status_code == 400 and "Choose a teacher config." in no_config.content.decode()
    assert not RedTeamRun.objects.exists() and not LabelingRun.objects.exists()


# --- API -------------------------------------------------------------------------------------------------------
def test_api_role_matrix(owner, engineer, annotator, nobody, finished, on_draft, rt_set, openai_config):
    reads = [f"/api/redteam/runs/{finished.pk}", f"/api/redteam/runs/{finished.pk}/report",
             f"/api/redteam/runs/{finished.pk}/compare/{finished.pk}", f"/api/redteam/sets/{rt_set.pk}"]  # fmt: skip
    body = {"set": rt_set.pk, "version": 1, "teacher": "fake"}
    for path in reads:
        assert _api(None).get(path).status_code == 401
        for user, status in ((owner, 200), (engineer, 200), (annotator, 403), (nobody, 403)):
            assert _api(user).get(path).status_code == status, (path, user.username)
    for user, status in ((engineer, 200), (annotator, 403), (nobody, 403)):
        assert _api(user).post("/api/redteam/runs/plan", body, content_type="application/json").status_code == status
    for user in (engineer, annotator, nobody):
        assert _api(user).post("/api/redteam/runs", body, content_type="application/json").status_code == 403
        created = _api(user).post("/api/policies/match/redteam/sets", {"seed": 1, "sample_size": 1,
                                  "categories": ["injection"]}, content_type="application/json")  # fmt: skip
        assert created.status_code == 403
    assert _api(engineer).get(f"/api/redteam/runs/{on_draft.pk}").status_code == 404
    assert _api(owner).get(f"/api/redteam/runs/{on_draft.pk}").status_code == 200
    draft_plan = {**body, "version": "draft"}
    assert _api(engineer).post("/api/redteam/runs/plan", draft_plan, content_type="application/json").status_code == 403


def test_api_creates_a_set_starts_a_run_idempotently_and_reads_the_report(owner, engineer, published, rt_pairs,
                                                                          openai_config, fake_openai):  # fmt: skip
    openai_config()
    fake_openai.responder = BiasedResponder()
    api = _api(owner)
    new_set = {"name": "api", "seed": 5, "sample_size": 6, "categories": ["protected_attribute", "irrelevant_noise"]}
    made = api.post("/api/policies/match/redteam/sets", new_set, content_type="application/json")
    assert made.status_code == 201 and made.json()["variants"] == 12
    body = {"set": made.json()["id"], "version": 1, "teacher": "fake"}
    plan = api.post("/api/redteam/runs/plan", body, content_type="application/json").json()
    assert plan["requests"] == 18 and [p["part"] for p in plan["parts"]] == [
        "clean", "protected_attribute", "irrelevant_noise",
    ]  # fmt: skip
    first = api.post("/api/redteam/runs", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post("/api/redteam/runs", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    assert RedTeamRun.objects.count() == 1
    assert first.json()["status"] == "running"
    process_all(RedTeamRun.objects.get())
    report = _api(engineer).get(f"/api/redteam/runs/{first.json()['id']}/report").json()
    assert report["finished"] and report["flip_rate"] == {"count": 6, "total": 6, "rate": 1.0}
    protected = report["categories"]["protected_attribute"]
    assert protected["attack_success"]["rate"] == 1.0 and report["categories"]["irrelevant_noise"]["attack_success"][
        "rate"] == 0.0  # fmt: skip
    example = protected["examples"][0]
    assert example["clean_label"] != example["label"] and example["changes"][0]["field"] == "member.summary"
    assert example["rationale"] and example["why"]
    summary = _api(engineer).get(f"/api/redteam/runs/{first.json()['id']}").json()
    assert summary["categories"]["protected_attribute"]["examples"] == []


def test_api_refuses_bad_input_with_a_message(owner, published, rt_set, openai_config):
    openai_config()
    api = _api(owner)
    bad = api.post("/api/policies/match/redteam/sets", {"seed": 1, "sample_size": 5, "categories": ["nope"]},
                   content_type="application/json")  # fmt: skip
    assert bad.status_code == 400 and "Unknown red-team category: nope" in bad.json()["detail"]
    for body, status, text in (
        ({"set": 999, "version": 1, "teacher": "fake"}, 404, "No red-team set #999."),
        ({"set": rt_set.pk, "version": 7, "teacher": "fake"}, 404, "No version 7"),
        ({"set": rt_set.pk, "version": "latest", "teacher": "fake"}, 400, "version number or 'draft'"),
        ({"set": rt_set.pk, "version": "²", "teacher": "fake"}, 400, "version number or 'draft'"),
        ({"set": rt_set.pk, "version": 1, "teacher": "nope"}, 404, "No teacher config 'nope'."),
    ):
        answer = api.post("/api/redteam/runs", body, content_type="application/json")
        assert answer.status_code == status and text in answer.json()["detail"], body
    assert not RedTeamRun.objects.exists()
    assert _api(owner).get("/api/redteam/runs/999").status_code == 404


def test_the_openapi_document_lists_the_red_team_endpoints(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {
        "/api/policies/{slug}/redteam/sets", "/api/redteam/runs", "/api/redteam/runs/plan",
        "/api/redteam/runs/{red_team_run_id}", "/api/redteam/runs/{red_team_run_id}/report",
        "/api/redteam/runs/{red_team_run_id}/compare/{other_id}", "/api/redteam/sets/{red_team_set_id}",
    } <= set(paths)  # fmt: skip
    start = paths["/api/redteam/runs"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in start["parameters"])


def test_the_side_by_side_page_marks_the_regressed_category(client, owner, finished, on_draft):
    client.force_login(owner)
    html = client.get(f"/redteam/runs/{on_draft.pk}/compare/?with={finished.pk}").content.decode()
    assert '<tr data-category="protected_attribute" class="removed">' in html
    assert "regression (8 variants)" in html
    assert '<tr data-category="irrelevant_noise" class="">' in html
    assert html.count('<tr data-variant="') == 8
    assert client.get(f"/redteam/runs/{on_draft.pk}/compare/").status_code == 404  # no run to compare with


def test_a_parts_run_page_says_what_it_is(client, engineer, finished):
    client.force_login(engineer)
    part = finished.runs.get(red_team_category="injection")
    html = client.get(f"/runs/{part.pk}/").content.decode()
    assert f'<a href="/redteam/runs/{finished.pk}/">red-team run #{finished.pk}</a>: the injection variants' in html
    assert f'href="/runs/{part.pk}/"' not in client.get("/runs/").content.decode()  # parts belong to their report
