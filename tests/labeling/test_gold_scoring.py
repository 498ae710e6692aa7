"""Scoring a published version × teacher config on the gold set through the run machinery (fake OpenAI server),
kept out of the review queue, teacher-disagreement routing and labeling figures; and existing runs' scores."""

import pytest

from labeling.models import Candidate, LabelingRun
from labeling.selectors import gold as gold_selectors
from labeling.selectors import review_queue_count
from labeling.services import GoldError, gold_score_start, labeling_run_create

from .gold_helpers import make_gold, teacher

GOLD = {("m1", "j1"): "strong_match", ("m1", "j2"): "no_match", ("m2", "j1"): "no_match", ("m2", "j2"): "partial_match"}
# The published prompt's answers: right on m1×j1 and m2×j1, wrong on m1×j2 and m2×j2.
PUBLISHED = {
    ("m1", "j1"): ("strong_match", ["R1"]),
    ("m1", "j2"): ("strong_match", ["R1"]),
    ("m2", "j1"): ("no_match", ["R2"]),
    ("m2", "j2"): ("no_match", ["R3"]),
}


@pytest.fixture
def gold(pairs, policy, owner):
    make_gold(policy, GOLD, user=owner)


@pytest.fixture
def fake_teacher(fake_openai):
    fake_openai.responder = teacher(published=PUBLISHED, draft=PUBLISHED)
    return fake_openai


def test_a_score_equals_what_the_teacher_answers_imply_against_gold(
    gold, published, owner, annotator, openai_config, fake_teacher, process_run
):
    run = process_run(gold_score_start(user=owner, version=published, config=openai_config()))

    assert (run.purpose, run.status, run.pairs_total) == ("gold_score", "succeeded", 4)
    score = gold_selectors.run_gold_score(run=run, target_precision=0.95)
    accuracy = score.evaluation.accuracy
    assert (accuracy.n, accuracy.correct, accuracy.accuracy) == (4, 2, 0.5)
    assert accuracy.labels == ["strong_match", "partial_match", "no_match"]
    assert accuracy.matrix == [[1, 0, 0], [0, 0, 1], [1, 0, 1]]  # rows gold, columns teacher
    assert [(r.rule, r.n, r.correct) for r in score.evaluation.per_rule] == [("R1", 2, 1), ("R2", 1, 1), ("R3", 1, 0)]
    # routed for gold conflicts, yet nothing reaches the review queue or counts as approved
    assert Candidate.objects.filter(run=run, reason_gold_conflict=True).count() == 2
    assert set(Candidate.objects.filter(run=run).values_list("review_state", "approved_label")) == {("", "")}
    assert review_queue_count(user=annotator) == 0


def test_scoring_again_is_answered_from_the_cache(gold, published, owner, openai_config, fake_teacher, process_run):
    config = openai_config()
    process_run(gold_score_start(user=owner, version=published, config=config))
    sent = len(fake_teacher.chat_requests())

    again = process_run(gold_score_start(user=owner, version=published, config=config))

    assert len(fake_teacher.chat_requests()) == sent == 4
    assert (again.samples_cached, again.cost) == (4, 0)


def test_a_score_run_does_not_make_labeling_runs_disagree(
    gold, published, owner, openai_config, fake_teacher, make_config, process_run
):
    heuristic = make_config("baseline", provider="heuristic")
    labeling = process_run(labeling_run_create(version=published, config=heuristic, selection={"all": True}))
    before = list(Candidate.objects.filter(run=labeling).order_by("id").values_list("routing", "review_state"))

    score = process_run(gold_score_start(user=owner, version=published, config=openai_config()))

    assert not Candidate.objects.filter(run=score, reason_teacher_disagreement=True).exists()
    assert Candidate.objects.filter(run=score).exclude(label__in=["strong_match"]).exists()  # it did disagree
    after = list(Candidate.objects.filter(run=labeling).order_by("id").values_list("routing", "review_state"))
    assert after == before
    later = process_run(labeling_run_create(version=published, config=openai_config("other"), selection={"all": True}))
    # the later labeling run disagrees with the first labeling run (heuristic), never with the score
    labels = dict(Candidate.objects.filter(run=labeling).values_list("pair_id", "label"))
    for candidate in Candidate.objects.filter(run=later):
        assert candidate.reason_teacher_disagreement == (labels[candidate.pair_id] != candidate.label)


def test_existing_runs_are_scored_on_the_gold_pairs(gold, published, owner, openai_config, fake_teacher, process_run):
    labeling = process_run(labeling_run_create(version=published, config=openai_config(), selection={"all": True}))

    rows = gold_selectors.runs_on_gold(policy=published.policy)

    assert [(row.run.pk, row.n, row.correct, row.accuracy) for row in rows] == [(labeling.pk, 4, 2, 0.5)]


def test_scoring_refuses_an_empty_gold_set_a_draft_and_an_unusable_config(
    pairs, policy, published, owner, openai_config, make_config
):
    config = openai_config()
    with pytest.raises(GoldError, match="gold set of Member–job match is empty"):
        gold_score_start(user=owner, version=published, config=config)
    make_gold(policy, GOLD)
    with pytest.raises(GoldError, match="Score a published version; v2 is draft"):
        gold_score_start(user=owner, version=policy.versions.get(number=2), config=config)
    keyless = make_config("keyless", api_key_name="nosuch")
    with pytest.raises(GoldError, match="keyless cannot be used: API key nosuch is not configured on the workers"):
        gold_score_start(user=owner, version=published, config=keyless)
    assert not LabelingRun.objects.exists()


# --- pages ------------------------------------------------------------------------------------------------------
def test_the_score_page_starts_a_score_and_shows_its_figures(
    gold, published, owner, engineer, openai_config, fake_teacher, process_run, client_for, client
):
    config = openai_config()
    response = client_for(owner).post("/policies/match/gold/score/", {"version": published.pk, "config": config.pk})
    run = LabelingRun.objects.get(purpose="gold_score")
    assert response.status_code == 302 and response.url == f"/policies/match/gold/score/{run.pk}/"

    running = client.get(response.url, HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in running.content and b"0 of 4" in running.content
    process_run(run)
    client.logout()
    page = client_for(engineer).get(response.url)  # ML engineers read scores

    assert page.status_code == 200
    assert b'<strong data-value="accuracy">0.500</strong>' in page.content
    assert b"hx-trigger" not in page.content
    listing = client.get("/policies/match/gold/score/")
    assert b'<td class="accuracy">0.500</td>' in listing.content
    assert b'id="score-form"' not in listing.content  # engineers read, only owners start scores


def test_the_score_page_says_why_it_cannot_score(pairs, published, owner, openai_config, client_for):
    config = openai_config()

    response = client_for(owner).post("/policies/match/gold/score/", {"version": published.pk, "config": config.pk})

    assert response.status_code == 400
    assert "The gold set of Member–job match is empty" in response.content.decode()
    assert not LabelingRun.objects.exists()
