"""A draft preview red-teams the draft too: when the policy has a red-team set, starting a preview (service, page
form, API) also starts a red-team run of the draft on the newest set (or the chosen one; or none when skipped) with
the same teacher config, linked from the preview, its chunks queued alternating with the gold runs'. The preview
page and the API's read show attack success per category and the flip rate next to the gold figures, and the
quality gates read that run once it is done.

The red-team set is drawn from cue-free pairs of their own import (like ``rt_pairs``), next to the gold pairs."""

import re

import pytest

from labeling.models import DraftPreview, LabelingRun, RedTeamRun, RedTeamSet, RunChunk
from labeling.selectors import previews as preview_selectors
from labeling.selectors.redteam_report import red_team_gate_figures
from labeling.services import GoldError, draft_preview_start, gates_for_draft, labeling_run_chunk_process
from labeling.services import runs as run_services
from labeling.services.redteam import red_team_run_cancel, red_team_run_resume, red_team_set_create
from tests.api_roles import CALLERS, bearer, caller_headers, expect_refused
from tests.fakes.openai_server import BiasedResponder, default_responder

from .conftest import RED_TEAM_CATEGORIES
from .gates_helpers import edit_draft, set_gates
from .gold_helpers import DRAFT_MARK, make_gold, pair_of, teacher
from .test_draft_preview import DRAFT
from .test_gold_scoring import GOLD, PUBLISHED

API = "/api/policies/match/previews"


@pytest.fixture
def rt_set(do_import, owner, policy, pairs):
    """A red-team set of 8 cue-free pairs of their own import (8 members × 3 jobs), every category (32 variants):
    ``rt_pairs``' people under other ids, so the gold pairs can be imported next to them."""
    members = "member_id,headline,skills,seniority,location,summary\n" + "".join(
        f'rm{i:02},Engineer {i},Python;SQL,mid,Berlin,"Builds data systems, {i + 2} years in retail."\n'
        for i in range(8)
    )
    jobs = "job_id,title,description,required_skills,seniority,location\n" + "".join(
        f"rj{i},Data engineer {i},Build pipelines in Python and SQL.,Python;SQL,mid,Berlin\n" for i in range(3)
    )
    assert do_import("members", "rt-members.csv", members).ok and do_import("jobs", "rt-jobs.csv", jobs).ok
    links = "member_id,job_id\n" + "".join(f"rm{i:02},rj{j}\n" for i in range(8) for j in range(3))
    batch = do_import("pairs", "rt-pairs.csv", links).batch
    return red_team_set_create(user=owner, policy=policy, name="t", seed=7, sample_size=8,
                               categories=RED_TEAM_CATEGORIES, import_batch_id=batch.pk)  # fmt: skip


@pytest.fixture
def gold_draft(rt_set, policy, owner):
    """Draft v2 holding DRAFT_MARK, the gold set of 4 pairs, and ``rt_set``."""
    make_gold(policy, GOLD, user=owner)
    return edit_draft(policy, owner, f"# Match policy\n\n{DRAFT_MARK}\n")


@pytest.fixture
def foreign_set(owner, policy):
    """A red-team set of another policy."""
    from policyhub import services as policy_services

    other = policy_services.policy_create(slug="other", name="Other", task_description="x", owner=owner,
                                          body="b", labels=policy.versions.get(number=1).labels, rules=[])  # fmt: skip
    return red_team_set_create(user=owner, policy=other, name="x", seed=1, sample_size=2, categories=["injection"])


def gold_or_default(request, call_number):
    """The gold teacher on the gold pairs (draft and published answer differently), the default answer elsewhere."""
    pair = pair_of(request)
    if pair in GOLD:
        return teacher(published=PUBLISHED, draft=DRAFT)(request, call_number)
    return default_responder(request, call_number)


@pytest.fixture
def biased_teacher(fake_openai):
    """Right on gold like the draft preview tests' teacher, and flips its label on every protected-attribute cue."""
    fake_openai.responder = BiasedResponder(gold_or_default)
    return fake_openai


@pytest.fixture
def queued(monkeypatch):
    """The (run id, chunk index) calls the services hand to the workers, in order (still sent on commit)."""
    calls: list[tuple[int, int]] = []
    real = run_services.enqueue_each

    def record(task_name, items, **kwargs):
        items = list(items)
        calls.extend(items)
        return real(task_name, items, **kwargs)

    monkeypatch.setattr(run_services, "enqueue_each", record)
    return calls


def process(calls):
    """Run the queued chunks here, in the order a single worker would take them."""
    for run_id, index in calls:
        if RunChunk.objects.filter(run_id=run_id, index=index, status="pending").exists():
            labeling_run_chunk_process(run_id=run_id, chunk_index=index)


# --- the service -----------------------------------------------------------------------------------------------
def test_a_preview_of_a_policy_with_a_red_team_set_red_teams_the_draft_on_the_newest_set(
    gold_draft, owner, policy, openai_config, biased_teacher, queued
):
    older = RedTeamSet.objects.get()
    newest = red_team_set_create(
        user=owner, policy=policy, name="newer", seed=8, sample_size=4, categories=["protected_attribute"]
    )
    config = openai_config()

    preview = draft_preview_start(user=owner, draft=gold_draft, config=config)

    red_team_run = preview.red_team_run
    assert red_team_run is not None and red_team_run.red_team_set == newest != older
    assert (red_team_run.policy_version, red_team_run.teacher_config) == (gold_draft, config)
    assert (red_team_run.draft_revision, red_team_run.content_hash) == (gold_draft.revision, gold_draft.content_hash)
    parts = list(red_team_run.runs.order_by("id"))
    assert [(p.purpose, p.red_team_category) for p in parts] == [("red_team", ""), ("red_team", "protected_attribute")]
    # one chunk per run here: draft, published, then the red-team parts, taken in turn
    assert queued == [(preview.draft_run_id, 0), (preview.published_run_id, 0), (parts[0].pk, 0), (parts[1].pk, 0)]


def test_chunks_alternate_between_the_gold_runs_and_every_red_team_part(
    gold_draft, owner, openai_config, biased_teacher, queued, monkeypatch
):
    monkeypatch.setattr("labeling.services.gold.GOLD_CHUNK_PAIRS", 2)
    monkeypatch.setattr("labeling.services.redteam.RED_TEAM_CHUNK_PAIRS", 4)

    preview = draft_preview_start(user=owner, draft=gold_draft, config=openai_config())

    runs = [preview.draft_run_id, preview.published_run_id, *preview.red_team_run.runs.order_by("id").values_list(
        "id", flat=True)]  # fmt: skip
    assert len(runs) == 2 + 1 + len(RED_TEAM_CATEGORIES)
    assert queued == [(run, 0) for run in runs] + [(run, 1) for run in runs]


def test_a_chosen_set_is_used_and_skipping_starts_gold_only(gold_draft, owner, policy, openai_config, biased_teacher):
    chosen = RedTeamSet.objects.get()
    red_team_set_create(user=owner, policy=policy, name="newer", seed=8, sample_size=4, categories=["injection"])
    config = openai_config()

    with_chosen = draft_preview_start(user=owner, draft=gold_draft, config=config, red_team_set=chosen)
    skipped = draft_preview_start(user=owner, draft=gold_draft, config=config, skip_red_team=True)

    assert with_chosen.red_team_run.red_team_set == chosen
    assert skipped.red_team_run is None and RedTeamRun.objects.count() == 1
    assert preview_selectors.draft_preview_state(preview=skipped, target_precision=0.95).red_team is None


def test_without_a_red_team_set_a_preview_labels_the_gold_set_only(pairs, policy, owner, openai_config, fake_openai):
    make_gold(policy, GOLD, user=owner)
    draft = edit_draft(policy, owner, f"# Match policy\n\n{DRAFT_MARK}\n")

    preview = draft_preview_start(user=owner, draft=draft, config=openai_config())

    assert preview.red_team_run is None and not RedTeamRun.objects.exists()
    assert not LabelingRun.objects.filter(purpose="red_team").exists()


def test_another_policys_set_is_refused_and_nothing_starts(gold_draft, owner, openai_config, biased_teacher,
                                                           foreign_set):  # fmt: skip
    foreign = foreign_set
    runs_before = LabelingRun.objects.count()

    with pytest.raises(GoldError, match=f"Red-team set #{foreign.pk} belongs to another policy"):
        draft_preview_start(user=owner, draft=gold_draft, config=openai_config(), red_team_set=foreign)

    assert not DraftPreview.objects.exists() and LabelingRun.objects.count() == runs_before


# --- processing in this process: the page shows what a biased teacher did --------------------------------------
def test_the_preview_page_shows_the_red_team_figures_of_a_biased_teacher(
    gold_draft, owner, policy, openai_config, biased_teacher, queued, client_for
):
    preview = draft_preview_start(user=owner, draft=gold_draft, config=openai_config())
    client = client_for(owner)
    url = f"/policies/match/draft/gold-preview/{preview.pk}/"

    process(queued[:2])  # the gold runs are done, the red team has not started
    page = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-finished="false"' in page and 'hx-trigger="every 1s"' in page  # still polling for the red team
    assert 'id="preview-red-team-progress">0 of 40<' in page
    assert 'id="draft-accuracy">0.750' in page

    process(queued)
    state = preview_selectors.draft_preview_state(preview=preview, target_precision=0.95)
    assert state.finished and state.red_team.finished
    figures = red_team_gate_figures(preview.red_team_run)
    assert figures["flip_rate"] == 1.0  # all 8 protected-attribute variants flipped
    assert biased_teacher.responder.flipped.total() == 8

    page = client.get(url).content.decode()
    assert 'data-finished="true"' in page and 'id="draft-accuracy">0.750' in page  # gold figures unchanged
    assert 'id="preview-red-team-flip-rate">8 / 8 (100%)' in page
    assert (
        '<tr data-category="protected_attribute"><td>protected_attribute</td>\n      <td class="attack">8 / 8 (100%)'
        in page
    )
    for category in ("injection", "irrelevant_noise", "hallucination_bait"):
        assert f'<tr data-category="{category}"><td>{category}</td>\n      <td class="attack">0 / 8 (0%)' in page
    assert f'href="/redteam/runs/{preview.red_team_run_id}/"' in page

    # the gates read the preview's red-team run as the draft's latest
    set_gates(policy, owner, max_flip_rate=0.05)
    check = gates_for_draft(policy)
    assert [(r.key, r.status) for r in check.results] == [("max_flip_rate", "failed")]
    assert check.figures["red_team"]["run"] == preview.red_team_run_id


def test_the_gates_say_the_previews_red_team_run_is_still_running(
    gold_draft, owner, policy, openai_config, biased_teacher, queued
):
    set_gates(policy, owner, max_flip_rate=0.05, require_red_team_run=True)
    preview = draft_preview_start(user=owner, draft=gold_draft, config=openai_config())
    process(queued[:2])

    (result,) = gates_for_draft(policy).results
    assert result.status == "not_measured" and result.blocking
    assert f"red-team run #{preview.red_team_run_id} of preview #{preview.pk} is still running" in result.detail


def test_the_gates_and_the_publish_page_point_at_the_previews_failed_or_cancelled_red_team_run(
    gold_draft, owner, policy, openai_config, biased_teacher, queued, client_for
):
    set_gates(policy, owner, max_flip_rate=0.05, require_red_team_run=True)
    preview = draft_preview_start(user=owner, draft=gold_draft, config=openai_config())
    run_id = preview.red_team_run_id
    process(queued[:2])  # the gold runs' chunks, not the red team's
    red_team_run_cancel(user=owner, run=preview.red_team_run)

    (result,) = gates_for_draft(policy).results
    assert (result.status, result.blocking, result.red_team_run) == ("not_measured", True, run_id)
    assert f"the red-team run #{run_id} of preview #{preview.pk} was cancelled (its clean part)" in result.detail
    client = client_for(owner)
    page = client.get("/policies/match/draft/publish/").content.decode()
    assert f'<a href="/redteam/runs/{run_id}/" id="gate-red-team-run">red-team run #{run_id}</a>' in page
    assert f'<a href="/redteam/runs/{run_id}/" class="gate-red-team-run">' in page  # in the results table too
    assert "was cancelled (its clean part); resume it or preview again" in page
    api = client.get("/api/policies/match/draft/gates", **bearer(owner)).json()
    assert api["figures"]["red_team_run"] == run_id and api["results"][0]["red_team_run"] == run_id

    red_team_run_resume(user=owner, run=preview.red_team_run)
    injection = preview.red_team_run.runs.get(red_team_category="injection")
    run_services.labeling_run_fail(run_id=injection.pk, error="The teacher answered 500 five times.")
    (result,) = gates_for_draft(policy).results
    failed = f"#{run_id} of preview #{preview.pk} failed (its injection part: The teacher answered 500 five times.)"
    assert result.red_team_run == run_id and failed in result.detail

    # resumed and finished: figures, no pointer at a run that gave none
    red_team_run_resume(user=owner, run=preview.red_team_run)
    for part in preview.red_team_run.runs.all():
        for chunk in part.chunks.filter(status="pending"):
            labeling_run_chunk_process(run_id=part.pk, chunk_index=chunk.index)
    check = gates_for_draft(policy)
    ((result,),) = [check.results]
    assert (result.status, result.red_team_run) == ("failed", None) and "red_team_run" not in check.figures
    page = client.get("/policies/match/draft/publish/").content.decode()
    assert 'id="gate-red-team-run"' not in page and "gate-red-team-run" not in page


# --- the page form ---------------------------------------------------------------------------------------------
def test_the_form_plans_the_gold_and_red_team_runs_side_by_side_without_starting_anything(
    gold_draft, owner, policy, openai_config, biased_teacher, client_for
):
    from labeling.selectors.redteam import red_team_plan

    config = openai_config(price_input_per_mtok=2, price_output_per_mtok=8)
    client = client_for(owner)
    planned = client.post("/policies/match/draft/gold-preview/start/", {"config": config.pk, "plan": "1"})
    assert planned.status_code == 200
    assert not DraftPreview.objects.exists() and not LabelingRun.objects.exists() and not RedTeamRun.objects.exists()
    assert not biased_teacher.chat_requests()
    html = planned.content.decode()
    rt_plan = red_team_plan(user=owner, red_team_set=RedTeamSet.objects.get(), version=gold_draft, config=config)
    gold_row = re.search(r'<tr data-plan="gold"><td>Gold set: draft \+ published \(4 pairs\)</td><td>(\d+)</td>', html)
    assert gold_row and gold_row.group(1) == "8"  # 4 gold pairs under the draft and under v1
    red_row = (f'<tr data-plan="red_team"><td>Red team: set #{RedTeamSet.objects.get().pk} t (5 parts)'
               f"</td><td>40</td><td>≈ {rt_plan.estimated_input_tokens}</td><td>≈ {rt_plan.estimated_output_tokens}"
               f"</td><td>≈ ${rt_plan.estimated_cost}</td></tr>")  # fmt: skip
    assert red_row in html and rt_plan.estimated_cost > 0
    assert 'id="preview-plan-cost">≈ $' in html
    skipped = client.post("/policies/match/draft/gold-preview/start/",
                          {"config": config.pk, "plan": "1", "red_team_set": "skip"}).content.decode()  # fmt: skip
    assert "none: skipped" in skipped and 'data-plan="gold"' in skipped
    assert not DraftPreview.objects.exists()


def test_the_form_offers_the_sets_and_starts_the_chosen_one_or_none(
    gold_draft, owner, policy, openai_config, biased_teacher, client_for
):
    chosen = RedTeamSet.objects.get()
    newest = red_team_set_create(
        user=owner, policy=policy, name="newer", seed=8, sample_size=4, categories=["injection"]
    )
    config = openai_config()
    client = client_for(owner)

    panel = client.get("/policies/match/draft/gold-preview/").content.decode()
    assert f"Newest (#{newest.pk} newer)" in panel and f'<option value="{chosen.pk}"' in panel
    assert "Skip the red team (gold only)" in panel

    started = client.post("/policies/match/draft/gold-preview/start/", {"config": config.pk, "red_team_set": chosen.pk})
    assert started.status_code == 302
    preview = DraftPreview.objects.get()
    assert preview.red_team_run.red_team_set == chosen
    page = client.get(started.url).content.decode()
    assert f"and red-teaming it on set #{chosen.pk}" in page and 'id="preview-red-team"' in page

    client.post("/policies/match/draft/gold-preview/start/", {"config": config.pk, "red_team_set": "skip"})
    assert DraftPreview.objects.first().red_team_run is None

    refused = client.post("/policies/match/draft/gold-preview/start/", {"config": config.pk, "red_team_set": "99999"})
    assert refused.status_code == 400 and "match has no red-team set &#x27;99999&#x27;" in refused.content.decode()
    assert DraftPreview.objects.count() == 2


def test_the_preview_page_is_the_policy_owners_only(gold_draft, owner, annotator, engineer, openai_config, client):
    preview = draft_preview_start(user=owner, draft=gold_draft, config=openai_config())
    for user in (annotator, engineer):
        client.force_login(user)
        assert client.get(f"/policies/match/draft/gold-preview/{preview.pk}/").status_code == 403
        assert client.post("/policies/match/draft/gold-preview/start/", {"config": 1}).status_code == 403


# --- the API -----------------------------------------------------------------------------------------------------
def test_the_api_starts_both_and_its_read_carries_the_red_team_summary(
    client, gold_draft, owner, openai_config, biased_teacher, queued
):
    openai_config("fake")
    auth = bearer(owner)

    retry = {**auth, "HTTP_IDEMPOTENCY_KEY": "preview-1"}
    started = client.post(API, {"teacher": "fake"}, content_type="application/json", **retry)
    assert started.status_code == 201, started.content
    again = client.post(API, {"teacher": "fake"}, content_type="application/json", **retry)
    assert again.status_code == 200 and again.json()["red_team_run"] == started.json()["red_team_run"]
    body = started.json()
    red_team_run = RedTeamRun.objects.get()  # the retry started no second one
    assert body["red_team_run"] == red_team_run.pk and body["finished"] is False
    assert body["red_team"]["status"] == "running" and body["red_team"]["samples_done"] == 0
    assert body["red_team"]["report_url"] == f"/redteam/runs/{red_team_run.pk}/"

    process(queued)
    read = client.get(f"{API}/{body['id']}", **auth).json()

    assert read["finished"] is True and read["draft_evaluation"]["accuracy"] == 0.75
    summary = read["red_team"]
    assert (summary["status"], summary["finished"], summary["samples_done"], summary["samples_total"]) == (
        "succeeded", True, 40, 40,
    )  # fmt: skip
    assert summary["flip_rate"] == {"count": 8, "total": 8, "rate": 1.0}
    assert summary["attack_success"]["protected_attribute"]["rate"] == 1.0
    assert {c: r["rate"] for c, r in summary["attack_success"].items() if c != "protected_attribute"} == {
        "injection": 0.0, "irrelevant_noise": 0.0, "hallucination_bait": 0.0,
    }  # fmt: skip


def test_the_api_skips_or_chooses_a_set_and_refuses_another_policys(
    client, gold_draft, owner, policy, openai_config, biased_teacher, foreign_set
):
    openai_config("fake")
    auth = bearer(owner)
    chosen = RedTeamSet.objects.get(policy=policy)
    red_team_set_create(user=owner, policy=policy, name="newer", seed=8, sample_size=4, categories=["injection"])
    foreign = foreign_set

    def start(body):
        return client.post(API, {"teacher": "fake", **body}, content_type="application/json", **auth)

    skipped = start({"skip_red_team": True})
    assert skipped.status_code == 201 and (skipped.json()["red_team_run"], skipped.json()["red_team"]) == (None, None)
    picked = start({"red_team_set": chosen.pk})
    assert picked.status_code == 201
    assert RedTeamRun.objects.get(pk=picked.json()["red_team_run"]).red_team_set == chosen
    refused = start({"red_team_set": foreign.pk})
    assert refused.status_code == 400 and refused.json()["detail"] == f"match has no red-team set #{foreign.pk}."
    assert DraftPreview.objects.count() == 2 and RedTeamRun.objects.count() == 1


@pytest.mark.parametrize("caller", CALLERS)
def test_role_matrix(client, caller, gold_draft, annotator, engineer, owner, openai_config, biased_teacher):
    openai_config("fake")
    existing = client.post(API, {"teacher": "fake"}, content_type="application/json", **bearer(owner)).json()["id"]
    headers = caller_headers(caller, annotator=annotator, engineer=engineer, owner=owner)

    answers = [
        client.post(API, {"teacher": "fake", "skip_red_team": True}, content_type="application/json", **headers),
        client.get(f"{API}/{existing}", **headers),
    ]

    if caller == "policy_owner":
        assert [a.status_code for a in answers] == [201, 200]
        assert answers[1].json()["red_team"]["id"] == RedTeamRun.objects.get().pk
        return
    for answer in answers:
        expect_refused(answer, caller, {"policy_owner"})
    assert DraftPreview.objects.count() == 1 and RedTeamRun.objects.count() == 1
