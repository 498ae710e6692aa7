"""/api/policies/{slug}/previews: a policy owner previews the saved draft on the gold set over the API (the fake
OpenAI server answers the draft's prompt differently), polls progress and figures while the chunks run, reads the
label flips, and is told when the draft changed since; refusals say why and start nothing; a retried start
returns the same preview; drafts are their owners' only."""

import pytest

from labeling.models import DraftPreview, LabelingRun
from labeling.services import gold
from tests.api_roles import CALLERS, bearer, caller_headers, expect_refused

from .gold_helpers import DRAFT_MARK, make_gold, teacher
from .test_draft_preview import DRAFT, edit_draft, run_chunks
from .test_gold_scoring import GOLD, PUBLISHED

URL = "/api/policies/match/previews"


@pytest.fixture
def draft(pairs, policy, owner):
    """The gold set of 4 pairs and the draft v2 holding DRAFT_MARK (the fake teacher answers it with DRAFT)."""
    make_gold(policy, GOLD, user=owner)
    return edit_draft(policy, owner, f"# Match policy\n\n{DRAFT_MARK}\n")


@pytest.fixture
def fake_teacher(fake_openai):
    fake_openai.responder = teacher(published=PUBLISHED, draft=DRAFT)
    return fake_openai


def start(client, body, headers):
    return client.post(URL, body, content_type="application/json", **headers)


def test_an_owner_previews_the_draft_and_polls_figures_and_flips(
    client,
    draft,
    owner,
    openai_config,
    fake_teacher,
    monkeypatch,
):
    monkeypatch.setattr(gold, "GOLD_CHUNK_PAIRS", 2)
    openai_config("fake")
    auth = bearer(owner)

    started = start(client, {"teacher": "fake"}, auth)

    assert started.status_code == 201, started.content
    body = started.json()
    assert (body["draft"], body["published_version"], body["teacher"], body["gold_pairs"]) == (2, 1, "fake", 4)
    assert (body["draft_done"], body["finished"], body["flips"]) == (0, False, 0)
    preview = DraftPreview.objects.get(pk=body["id"])
    run_chunks(preview, index=0)

    partial = client.get(f"{URL}/{preview.pk}", **auth).json()

    assert (partial["draft_done"], partial["published_done"], partial["finished"]) == (2, 2, False)
    run_chunks(preview)
    done = client.get(f"{URL}/{preview.pk}", **auth).json()
    assert (done["finished"], done["total"], done["compared"], done["flips"], done["stale"]) == (True, 4, 4, 3, "")
    assert (done["draft_evaluation"]["accuracy"], done["published_evaluation"]["accuracy"]) == (0.75, 0.5)
    flips = client.get(f"{URL}/{preview.pk}/flips", **auth).json()
    assert sorted(
        (f["member_id"], f["job_id"], f["published_label"], f["draft_label"], f["gold_label"]) for f in flips
    ) == [
        ("m1", "j2", "strong_match", "no_match", "no_match"),
        ("m2", "j1", "no_match", "partial_match", "no_match"),
        ("m2", "j2", "no_match", "partial_match", "partial_match"),
    ]
    assert [f["pair_id"] for f in flips] == sorted(f["pair_id"] for f in flips)
    assert {f["draft_rationale"] for f in flips} >= {"draft says no_match for m1×j2."}
    assert len(client.get(f"{URL}/{preview.pk}/flips", {"offset": 2}, **auth).json()) == 1

    edit_draft(preview.policy, owner, "# Match policy\n\nRewritten after the preview.\n")

    assert "The draft changed since this preview" in client.get(f"{URL}/{preview.pk}", **auth).json()["stale"]


def test_the_same_idempotency_key_returns_the_same_preview(client, draft, owner, openai_config, fake_teacher):
    openai_config("fake")
    auth = {**bearer(owner), "HTTP_IDEMPOTENCY_KEY": "preview-1"}

    first = start(client, {"teacher": "fake"}, auth)
    again = start(client, {"teacher": "fake"}, auth)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert DraftPreview.objects.count() == 1 and LabelingRun.objects.count() == 2


def test_a_key_used_for_a_score_is_not_taken_for_a_preview(client, draft, owner, openai_config, fake_teacher):
    openai_config("fake")
    auth = {**bearer(owner), "HTTP_IDEMPOTENCY_KEY": "k1"}
    scored = client.post("/api/policies/match/gold/scores", {"version": 1, "teacher": "fake"},
                         content_type="application/json", **auth)  # fmt: skip

    refused = start(client, {"teacher": "fake"}, auth)

    assert scored.status_code == 201
    assert refused.status_code == 400 and "was used for run" in refused.json()["detail"]
    assert not DraftPreview.objects.exists()


@pytest.mark.parametrize(
    ("setup", "body", "status", "message"),
    [
        ("", {"teacher": "nope"}, 404, "No teacher config 'nope'."),
        ("no_gold", {"teacher": "fake"}, 400, "The gold set of Member–job match is empty"),
        ("no_draft", {"teacher": "fake"}, 400, "There is no draft to preview"),
        ("no_key", {"teacher": "fake"}, 400, "Teacher config fake cannot be used"),
        ("", {"teacher": ["fake"]}, 422, "teacher"),
    ],
)
def test_a_refused_preview_says_why_and_starts_nothing(
    client,
    draft,
    policy,
    owner,
    openai_config,
    fake_teacher,
    monkeypatch,
    setup,
    body,
    status,
    message,
):
    openai_config("fake")
    if setup == "no_gold":
        policy.gold_labels.all().delete()
    elif setup == "no_draft":
        draft.delete()
    elif setup == "no_key":
        monkeypatch.delenv("OPENAI_API_KEY")

    response = start(client, body, bearer(owner))

    assert response.status_code == status and message in str(response.json()["detail"]), response.content
    assert not DraftPreview.objects.exists() and not LabelingRun.objects.exists()


@pytest.mark.parametrize("caller", CALLERS)
def test_role_matrix(client, caller, draft, annotator, engineer, owner, openai_config, fake_teacher):
    openai_config("fake")
    existing = start(client, {"teacher": "fake"}, bearer(owner)).json()["id"]
    headers = caller_headers(caller, annotator=annotator, engineer=engineer, owner=owner)

    answers = [
        start(client, {"teacher": "fake"}, headers),
        client.get(f"{URL}/{existing}", **headers),
        client.get(f"{URL}/{existing}/flips", **headers),
    ]

    if caller == "policy_owner":
        assert [a.status_code for a in answers] == [201, 200, 200]
        return
    for answer in answers:
        expect_refused(answer, caller, {"policy_owner"})
    assert DraftPreview.objects.count() == 1
