"""/api/policies/{slug}/gold/scores: a policy owner scores a published version × teacher config on the gold set
over the API (a run on the workers' machinery; here its chunks are processed in-process against the fake OpenAI
server) and reads its figures; refusals say why and start nothing; a retried start returns the same score."""

import pytest

from labeling.models import LabelingRun
from tests.api_roles import CALLERS, bearer, caller_headers, expect_refused

from .gold_helpers import make_gold, teacher
from .test_gold_scoring import GOLD, PUBLISHED

URL = "/api/policies/match/gold/scores"


@pytest.fixture
def gold(pairs, policy, owner):
    make_gold(policy, GOLD, user=owner)


@pytest.fixture
def fake_teacher(fake_openai):
    fake_openai.responder = teacher(published=PUBLISHED, draft=PUBLISHED)
    return fake_openai


def start(client, body, headers, **extra):
    return client.post(URL, body, content_type="application/json", **headers, **extra)


def test_an_owner_scores_a_version_and_reads_the_figures(
    client, gold, owner, engineer, openai_config, fake_teacher, process_run
):
    openai_config("fake")

    started = start(client, {"version": 1, "teacher": "fake"}, bearer(owner))

    assert started.status_code == 201, started.content
    body = started.json()
    assert (body["run"]["purpose"], body["run"]["status"], body["run"]["pairs_total"]) == ("gold_score", "running", 4)
    assert (body["gold_total"], body["labeled"], body["finished"]) == (4, 0, False)
    process_run(LabelingRun.objects.get(pk=body["run"]["id"]))

    score = client.get(f"{URL}/{body['run']['id']}", **bearer(engineer))

    assert score.status_code == 200, score.content
    figures = score.json()
    assert (figures["finished"], figures["in_run"], figures["labeled"], figures["failed"]) == (True, 4, 4, 0)
    evaluation = figures["evaluation"]
    assert (evaluation["items"], evaluation["accuracy"]) == (4, 0.5)
    assert evaluation["labels"] == ["strong_match", "partial_match", "no_match"]
    assert evaluation["confusion"] == [[1, 0, 0], [0, 0, 1], [1, 0, 1]]  # rows gold, columns teacher
    assert [(r["rule"], r["items"], r["correct"]) for r in evaluation["per_rule"]] == [
        ("R1", 2, 1), ("R2", 1, 1), ("R3", 1, 0)
    ]  # fmt: skip
    listed = client.get(URL, **bearer(engineer)).json()
    assert [(row["run"]["id"], row["items"], row["correct"], row["accuracy"]) for row in listed] == [
        (body["run"]["id"], 4, 2, 0.5)
    ]
    assert client.get(f"{URL}/{body['run']['id']}", {"precision": "2"}, **bearer(owner)).status_code == 400


def test_the_same_idempotency_key_returns_the_same_score(client, gold, owner, openai_config, fake_teacher):
    openai_config("fake")
    auth = {**bearer(owner), "HTTP_IDEMPOTENCY_KEY": "score-v1-fake"}

    first = start(client, {"version": 1, "teacher": "fake"}, auth)
    again = start(client, {"version": 1, "teacher": "fake"}, auth)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["run"]["id"] == first.json()["run"]["id"]
    assert LabelingRun.objects.filter(purpose="gold_score").count() == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"version": 2, "teacher": "fake"}, 400, "Score a published version; v2 is draft."),
        ({"version": 7, "teacher": "fake"}, 404, "match has no version 7."),
        ({"version": 1, "teacher": "nope"}, 404, "No teacher config 'nope'."),
        ({"version": 1, "teacher": "no-key"}, 400, "Teacher config no-key cannot be used"),
        ({"version": "one", "teacher": "fake"}, 422, "version"),
    ],
)
def test_a_refused_start_says_why_and_starts_nothing(
    client, gold, owner, openai_config, fake_teacher, monkeypatch, body, status, message
):
    openai_config("fake")
    openai_config("no-key", api_key_name="openai")
    if body["teacher"] == "no-key":
        monkeypatch.delenv("OPENAI_API_KEY")

    response = start(client, body, bearer(owner))

    assert response.status_code == status and message in str(response.json()["detail"]), response.content
    assert not LabelingRun.objects.exists()


def test_an_empty_gold_set_is_refused(client, pairs, policy, owner, openai_config, fake_teacher):
    openai_config("fake")

    response = start(client, {"version": 1, "teacher": "fake"}, bearer(owner))

    assert response.status_code == 400 and "The gold set of Member–job match is empty" in response.json()["detail"]
    assert not LabelingRun.objects.exists()


@pytest.mark.parametrize("caller", CALLERS)
def test_role_matrix(client, caller, gold, annotator, engineer, owner, openai_config, fake_teacher):
    openai_config("fake")
    headers = caller_headers(caller, annotator=annotator, engineer=engineer, owner=owner)

    started = start(client, {"version": 1, "teacher": "fake"}, headers)
    listed = client.get(URL, **headers)

    if caller == "policy_owner":
        assert (started.status_code, listed.status_code) == (201, 200)
        return
    expect_refused(started, caller, {"policy_owner"})
    assert not LabelingRun.objects.exists()
    if caller == "ml_engineer":
        assert listed.status_code == 200
    else:
        expect_refused(listed, caller, {"policy_owner", "ml_engineer"})
