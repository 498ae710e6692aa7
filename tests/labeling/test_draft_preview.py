"""Previewing a draft on the gold set: the draft's frozen prompt against gold and against the published version
under the same teacher config (the fake OpenAI server answers differently to the draft's prompt), figures and
flips while the runs are still going, the stale-draft notice and the clear refusals."""

import pytest

from labeling.models import Candidate, DraftPreview, LabelingRun, RunChunk
from labeling.selectors import previews as gold_selectors
from labeling.services import GoldError, draft_preview_start, gold, labeling_run_chunk_process
from policyhub import services as policy_services
from policyhub.prompts import build_system_prompt

from .gold_helpers import DRAFT_MARK, make_gold, teacher
from .test_gold_scoring import GOLD, PUBLISHED

# The draft's answers: fixes m1×j2 and m2×j2, breaks m2×j1 (3 flips); accuracy 3/4 against the published 2/4.
DRAFT = {
    ("m1", "j1"): ("strong_match", ["R1"]),
    ("m1", "j2"): ("no_match", ["R1"]),
    ("m2", "j1"): ("partial_match", ["R3"]),
    ("m2", "j2"): ("partial_match", ["R3"]),
}


def edit_draft(policy, owner, body: str):
    draft = policy.versions.get(number=2)
    return policy_services.policy_version_draft_save(
        version=draft, user=owner, revision=draft.revision, body=body, labels=draft.labels, rules=draft.rules
    )


@pytest.fixture
def draft(pairs, policy, owner):
    make_gold(policy, GOLD, user=owner)
    return edit_draft(policy, owner, f"# Match policy\n\n{DRAFT_MARK}\n")


@pytest.fixture
def fake_teacher(fake_openai):
    fake_openai.responder = teacher(published=PUBLISHED, draft=DRAFT)
    return fake_openai


def run_chunks(preview, index=None):
    """Process the preview's pending chunks (only chunk ``index`` of each run when given), as workers would."""
    for run_id in (preview.draft_run_id, preview.published_run_id):
        chunks = RunChunk.objects.filter(run_id=run_id, status="pending").order_by("index")
        for chunk in chunks if index is None else chunks.filter(index=index):
            labeling_run_chunk_process(run_id=run_id, chunk_index=chunk.index)


def flips(state):
    return sorted(
        (f.pair.member.external_id, f.pair.job.external_id, f.published_label, f.draft_label, f.gold_label)
        for f in state.flips
    )


def test_a_preview_shows_accuracy_against_gold_and_published_and_the_flips(
    draft, owner, openai_config, fake_teacher, client_for
):
    preview = draft_preview_start(user=owner, draft=draft, config=openai_config())
    run_chunks(preview)

    state = gold_selectors.draft_preview_state(preview=preview, target_precision=0.95)

    assert state.finished and (state.total, state.draft_done, state.published_done) == (4, 4, 4)
    assert (state.draft_evaluation.accuracy.correct, state.draft_evaluation.accuracy.accuracy) == (3, 0.75)
    assert (state.published_evaluation.accuracy.correct, state.published_evaluation.accuracy.accuracy) == (2, 0.5)
    assert flips(state) == [
        ("m1", "j2", "strong_match", "no_match", "no_match"),
        ("m2", "j1", "no_match", "partial_match", "no_match"),
        ("m2", "j2", "no_match", "partial_match", "partial_match"),
    ]
    assert {f.draft_rationale for f in state.flips} == {
        "draft says no_match for m1×j2.", "draft says partial_match for m2×j1.", "draft says partial_match for m2×j2.",
    }  # fmt: skip
    assert state.compared == 4 and state.stale == ""
    # the draft run carried the draft's prompt, the published one the published prompt; neither reached review
    draft_run, published_run = LabelingRun.objects.get(pk=preview.draft_run_id), preview.published_run
    assert draft_run.system_prompt == build_system_prompt(draft) and DRAFT_MARK in draft_run.system_prompt
    assert (draft_run.purpose, published_run.purpose) == ("draft_preview", "gold_score")
    assert published_run.policy_version.number == 1 and DRAFT_MARK not in published_run.system_prompt
    assert not Candidate.objects.exclude(review_state="").exists()

    page = client_for(owner).get(f"/policies/match/draft/gold-preview/{preview.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<strong id="draft-progress">4 of 4</strong>' in html
    assert '<td id="draft-accuracy">0.750 <span class="muted">(3 of 4)</span></td>' in html
    assert '<td id="published-accuracy">0.500 <span class="muted">(2 of 4)</span></td>' in html
    assert html.count('<tr data-pair="') == 3 and "draft says no_match for m1×j2." in html
    assert "hx-trigger" not in html  # done: the page stops polling


def test_figures_and_flips_show_while_the_preview_is_still_running(
    draft, owner, openai_config, fake_teacher, client_for, monkeypatch
):
    monkeypatch.setattr(gold, "GOLD_CHUNK_PAIRS", 2)
    preview = draft_preview_start(user=owner, draft=draft, config=openai_config())
    client = client_for(owner)
    url = f"/policies/match/draft/gold-preview/{preview.pk}/"

    empty = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    run_chunks(preview, index=0)  # the first two gold pairs of both runs
    partial = client.get(url, HTTP_HX_REQUEST="true").content.decode()

    first = RunChunk.objects.get(run_id=preview.draft_run_id, index=0)
    done_pairs = [
        (c.pair.member.external_id, c.pair.job.external_id)
        for c in Candidate.objects.filter(
            run_id=preview.draft_run_id, id__gte=first.first_candidate_id, id__lte=first.last_candidate_id
        ).select_related("pair__member", "pair__job")
    ]
    draft_right = sum(DRAFT[p][0] == GOLD[p] for p in done_pairs)
    published_right = sum(PUBLISHED[p][0] == GOLD[p] for p in done_pairs)
    flipped = sorted(f"{m}|{j}" for m, j in done_pairs if DRAFT[(m, j)][0] != PUBLISHED[(m, j)][0])
    assert '<strong id="draft-progress">0 of 4</strong>' in empty and "Nothing compared yet." in empty
    assert 'hx-trigger="every 1s"' in partial
    assert '<strong id="draft-progress">2 of 4</strong>' in partial
    assert f'<td id="draft-accuracy">{draft_right / 2:.3f} <span class="muted">({draft_right} of 2)</span>' in partial
    assert (
        f'<td id="published-accuracy">{published_right / 2:.3f} <span class="muted">({published_right} of 2)' in partial
    )
    assert sorted(p.split('"')[0] for p in partial.split('<tr data-pair="')[1:]) == flipped

    run_chunks(preview)
    done = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in done and done.count('<tr data-pair="') == 3


def test_the_preview_keeps_the_frozen_draft_and_says_when_the_draft_changed(
    draft, policy, owner, openai_config, fake_teacher, client_for, monkeypatch
):
    monkeypatch.setattr(gold, "GOLD_CHUNK_PAIRS", 2)
    preview = draft_preview_start(user=owner, draft=draft, config=openai_config())
    run_chunks(preview, index=0)
    edit_draft(policy, owner, "# Match policy\n\nRewritten after the preview started.\n")  # revision 2 → 3
    run_chunks(preview)

    draft_prompts = {
        r["messages"][0]["content"] for r in fake_teacher.chat_requests() if "version 2," in r["messages"][0]["content"]
    }
    assert len(draft_prompts) == 1 and DRAFT_MARK in draft_prompts.pop()  # later chunks still ask the frozen draft
    page = client_for(owner).get(f"/policies/match/draft/gold-preview/{preview.pk}/").content.decode()
    assert "The draft changed since this preview (revision 2 → 3)" in page
    assert '<td id="draft-accuracy">0.750' in page


def test_a_second_preview_reuses_the_published_score_and_the_cache(draft, owner, openai_config, fake_teacher):
    config = openai_config()
    first = draft_preview_start(user=owner, draft=draft, config=config)
    run_chunks(first)
    sent = len(fake_teacher.chat_requests())

    second = draft_preview_start(user=owner, draft=draft, config=config)
    run_chunks(second)

    assert second.published_run_id == first.published_run_id
    assert len(fake_teacher.chat_requests()) == sent == 8
    state = gold_selectors.draft_preview_state(preview=second, target_precision=0.95)
    assert state.finished and len(state.flips) == 3


def test_without_a_published_version_the_draft_is_compared_with_gold_only(
    pairs, owner, openai_config, fake_teacher, client_for
):
    from tests.conftest import LABELS, RULES

    policy = policy_services.policy_create(
        slug="fresh", name="Fresh", task_description="Match?", owner=owner, body=DRAFT_MARK, labels=LABELS, rules=RULES
    )
    make_gold(policy, GOLD)
    preview = draft_preview_start(user=owner, draft=policy.versions.get(), config=openai_config())
    run_chunks(preview)

    state = gold_selectors.draft_preview_state(preview=preview, target_precision=0.95)
    assert preview.published_run is None and state.published_evaluation is None and state.finished
    assert state.draft_evaluation.accuracy.accuracy == 0.75
    page = client_for(owner).get(f"/policies/fresh/draft/gold-preview/{preview.pk}/").content.decode()
    assert "no published version to compare with: compared with gold only" in page
    assert 'id="flips"' not in page


def test_previews_are_refused_clearly(pairs, policy, owner, openai_config, make_config, client_for):
    draft = policy.versions.get(number=2)
    client = client_for(owner)
    config = openai_config()

    no_gold = client.post("/policies/match/draft/gold-preview/start/", {"config": config.pk})
    make_gold(policy, GOLD)
    keyless = make_config("keyless", api_key_name="nosuch")
    bad_config = client.post("/policies/match/draft/gold-preview/start/", {"config": keyless.pk})
    no_config = client.post("/policies/match/draft/gold-preview/start/", {"config": "999"})

    assert no_gold.status_code == bad_config.status_code == no_config.status_code == 400
    assert "The gold set of Member–job match is empty" in no_gold.content.decode()
    assert "keyless cannot be used: API key nosuch is not configured on the workers" in bad_config.content.decode()
    assert "Choose a teacher config" in no_config.content.decode()
    policy_services.policy_version_publish(version=draft, user=owner)
    with pytest.raises(GoldError, match="v2 is published, not a draft"):
        draft_preview_start(user=owner, draft=draft, config=config)
    assert not DraftPreview.objects.exists() and not LabelingRun.objects.exists()


def test_the_editor_offers_the_preview_with_the_teacher_configs(draft, owner, openai_config, client_for):
    config = openai_config()
    client = client_for(owner)

    editor = client.get("/policies/match/draft/").content.decode()
    panel = client.get("/policies/match/draft/gold-preview/", HTTP_HX_REQUEST="true").content.decode()
    started = client.post("/policies/match/draft/gold-preview/start/", {"config": config.pk})

    assert 'hx-get="/policies/match/draft/gold-preview/"' in editor
    assert "Labels the 4 gold pairs under the <strong>saved</strong> draft (revision 2)" in panel
    assert f'<option value="{config.pk}"' in panel
    preview = DraftPreview.objects.get()
    assert started.status_code == 302 and started.url == f"/policies/match/draft/gold-preview/{preview.pk}/"
    assert (preview.draft_revision, preview.content_hash, preview.created_by) == (2, draft.content_hash, owner)


def test_a_teacher_that_fails_on_the_worker_ends_the_preview_with_its_error(
    draft, owner, openai_config, fake_teacher, client_for, monkeypatch
):
    preview = draft_preview_start(user=owner, draft=draft, config=openai_config())
    monkeypatch.delenv("OPENAI_API_KEY")  # the worker's environment lacks the key the web process had
    run_chunks(preview)

    page = client_for(owner).get(f"/policies/match/draft/gold-preview/{preview.pk}/").content.decode()

    assert "Draft: API key openai is not configured on the workers." in page
    assert "Published: API key openai is not configured on the workers." in page
    assert "OPENAI_API_KEY" not in page  # the variable behind the key stays the workers' business
    assert '<span class="badge failed" id="preview-status">Failed</span>' in page and "hx-trigger" not in page
    assert fake_teacher.chat_requests() == []


def test_ml_engineers_do_not_see_a_previews_draft_run(draft, owner, engineer, make_config, client_for):
    preview = draft_preview_start(user=owner, draft=draft, config=make_config("baseline", provider="heuristic"))
    client = client_for(engineer)

    listing = client.get("/runs/").content.decode()

    assert client.get(f"/runs/{preview.draft_run_id}/").status_code == 404
    assert client.post(f"/runs/{preview.draft_run_id}/cancel/").status_code == 404
    assert client.get(f"/runs/{preview.published_run_id}/").status_code == 200  # a score of the published version
    assert f'href="/runs/{preview.published_run_id}/"' in listing
    assert f'href="/runs/{preview.draft_run_id}/"' not in listing
    assert LabelingRun.objects.get(pk=preview.draft_run_id).status == "running"


def test_the_gold_pages_do_not_show_a_previews_draft_run(draft, owner, engineer, make_config, client_for):
    preview = draft_preview_start(user=owner, draft=draft, config=make_config("baseline", provider="heuristic"))
    score_page = "/policies/match/gold/score/{}/"

    for user in (owner, engineer):  # the score pages are for labeling and score runs; a preview has its own page
        response = client_for(user).get(score_page.format(preview.draft_run_id))
        assert response.status_code == 404
        assert f"match has no run #{preview.draft_run_id} to score." in response.content.decode()
    assert client_for(engineer).get(score_page.format(preview.published_run_id)).status_code == 200
    assert client_for(owner).get(score_page.format(10**9)).status_code == 404
    for run_id in (preview.draft_run_id, preview.published_run_id, 10**9):  # only labeling runs have items to mark
        response = client_for(owner).get(f"/runs/{run_id}/gold/")
        assert response.status_code == 404
        assert f"No labeling run #{run_id}." in response.content.decode()
        assert client_for(owner).post(f"/runs/{run_id}/gold/mark-all/").status_code == 404


def test_the_api_hides_a_previews_draft_run_from_ml_engineers_too(draft, owner, engineer, make_config, make_user):
    from django.test import Client

    from policyhub import roles
    from policyhub.services import api_token_create

    preview = draft_preview_start(user=owner, draft=draft, config=make_config("baseline", provider="heuristic"))
    both = make_user("both", roles.ML_ENGINEER, roles.POLICY_OWNER)

    def call(user, path, method="get"):
        token = api_token_create(user=user, name="tests").raw
        return getattr(Client(), method)(path, HTTP_AUTHORIZATION=f"Bearer {token}")

    def get(user, path):
        return call(user, path)

    for path in ("", "/candidates", "/agreement", "/labelstudio"):
        response = get(engineer, f"/api/runs/{preview.draft_run_id}{path}")
        assert response.status_code == 404, path
        assert response.json()["detail"] == f"No run #{preview.draft_run_id}."
    assert call(engineer, f"/api/runs/{preview.draft_run_id}/cancel", "post").status_code == 404
    assert LabelingRun.objects.get(pk=preview.draft_run_id).status == "running"
    assert get(engineer, f"/api/runs/{preview.published_run_id}").status_code == 200  # a score of the published one
    assert get(both, f"/api/runs/{preview.draft_run_id}").json()["id"] == preview.draft_run_id  # an owner sees it
