"""The agreement page and API: the numbers a set of reviews implies, per run and per version, and who may see them.

Four items, two annotators, the teacher said strong_match on all four:
  c1  a strong  b strong  → strong (teacher right)      confidence 0.9
  c2  a partial b no      → adjudicated no (wrong)       confidence 0.6
  c3  a no      b no      → no (wrong)                   confidence 0.5
  c4  a strong  b strong  → strong (right)               confidence 0.8
κ(a, b): observed 3/4, expected ½·½ + ¼·0 + ¼·½ = 0.375 → κ = 0.375 / 0.625 = 0.6.
α (nominal): 8 values (strong 4, partial 1, no 3), disagreeing pairs 2 → α = 1 − 7·2 / (64 − 26) = 0.6316.
Teacher vs human: 2 of 4 right; ECE = (0.1 + 0.2 + 0.6 + 0.5) / 4 = 0.35; precision ≥ 0.95 from confidence 0.8.
"""

import pytest
from django.utils.html import escape

from labeling.models import Candidate, TeacherSample
from labeling.services import labeling_run_create, review_adjudicate, review_claim_next, review_submit
from policyhub import roles, services

LABELS = {"s": "strong_match", "p": "partial_match", "n": "no_match"}
PLAN = [("s", "s", 0.9), ("p", "n", 0.6), ("n", "n", 0.5), ("s", "s", 0.8)]


@pytest.fixture
def reviewed_run(review_items, make_user, owner):
    a, b = make_user("ann_a", roles.ANNOTATOR), make_user("ann_b", roles.ANNOTATOR)
    run = review_items(4, reviewers=2)
    items = list(Candidate.objects.filter(run=run).order_by("id"))
    for item, (label_a, label_b, confidence) in zip(items, PLAN, strict=True):
        Candidate.objects.filter(pk=item.pk).update(confidence=confidence)
        # the teacher's samples: two gave its label (citing R1, and R2 on the first two items), one did not
        rules = ["R1", "R2"] if item.pk in (items[0].pk, items[1].pk) else ["R1"]
        TeacherSample.objects.bulk_create([
            TeacherSample(run=run, pair=item.pair, sample_index=0, label="strong_match", cited_rules=rules),
            TeacherSample(run=run, pair=item.pair, sample_index=1, label="strong_match", cited_rules=["R1"]),
            TeacherSample(run=run, pair=item.pair, sample_index=2, label="no_match", cited_rules=["R3"]),
        ])  # fmt: skip
    for user, column in ((a, 0), (b, 1)):
        for _ in items:
            item = review_claim_next(user=user, run_id=run.pk)
            plan = PLAN[[c.pk for c in items].index(item.pk)]
            review_submit(user=user, candidate_id=item.pk, label=LABELS[plan[column]])
    review_adjudicate(user=owner, candidate_id=items[1].pk, label="no_match", reason="R1: the must-have is missing.")
    return run


def _auth(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {services.api_token_create(user=user, name='t').raw}"}


def test_the_api_reports_what_the_reviews_imply(reviewed_run, engineer, client):
    response = client.get(f"/api/runs/{reviewed_run.pk}/agreement", **_auth(engineer))
    assert response.status_code == 200
    figures = response.json()
    assert (figures["reviews"], figures["items_reviewed"], figures["items_multi"]) == (8, 4, 4)
    assert (figures["adjudicated"], figures["human_approved"]) == (1, 4)
    assert figures["reviewers"] == ["ann_a", "ann_b"]
    (pair,) = figures["cohen_kappa"]
    assert pair["annotators"] == ["ann_a", "ann_b"] and pair["items"] == 4
    assert pair["observed"] == pytest.approx(0.75) and pair["kappa"] == pytest.approx(0.6)
    assert figures["krippendorff_alpha"] == pytest.approx(1 - 14 / 38)
    teacher = figures["teacher_vs_human"]
    assert teacher["accuracy"] == pytest.approx(0.5)
    assert teacher["labels"] == ["strong_match", "partial_match", "no_match"]
    assert teacher["confusion"] == [[2, 0, 0], [0, 0, 0], [2, 0, 0]]  # rows: human, columns: teacher
    assert teacher["per_rule"] == [
        {"rule": "R1", "items": 4, "correct": 2},
        {"rule": "R2", "items": 2, "correct": 1},
    ]  # R3 was cited only by samples that disagreed with the teacher's label
    assert teacher["ece"] == pytest.approx(0.35)
    assert teacher["threshold"]["threshold"] == pytest.approx(0.8)
    assert (teacher["threshold"]["precision"], teacher["threshold"]["accepted"]) == (1.0, 2)


def test_a_lower_target_precision_widens_the_threshold(reviewed_run, owner, client):
    figures = client.get(f"/api/runs/{reviewed_run.pk}/agreement?precision=0.5", **_auth(owner)).json()
    assert figures["teacher_vs_human"]["threshold"] == {
        "target_precision": 0.5, "threshold": 0.5, "precision": 0.5, "accepted": 4, "items": 4,
    }  # fmt: skip


@pytest.mark.parametrize("bad", ["1.5", "0.2", "high"])
def test_a_bad_target_precision_is_a_400_with_the_reason(reviewed_run, owner, client, client_for, bad):
    response = client.get(f"/api/runs/{reviewed_run.pk}/agreement?precision={bad}", **_auth(owner))
    assert response.status_code == 400
    assert "Target precision must be" in response.json()["detail"]
    page = client_for(owner).get(f"/runs/{reviewed_run.pk}/agreement/?precision={bad}")
    assert page.status_code == 400
    assert "Target precision must be" in page.content.decode()


def test_the_page_shows_the_figures(reviewed_run, owner, client_for):
    html = client_for(owner).get(f"/runs/{reviewed_run.pk}/agreement/").content.decode()
    assert "{#" not in html and "EvaluationReport" not in html  # template comments stay comments
    assert 'data-value="alpha">0.632<' in html
    assert 'data-value="kappa">0.600<' in html
    assert 'data-value="accuracy">0.500<' in html
    assert 'data-value="ece">0.350<' in html
    assert 'data-value="threshold">0.800<' in html
    assert escape("Items citing it") in html and '<tr data-rule="R2">' in html
    # the rule's text from this version is shown next to its accuracy
    rule_text = reviewed_run.policy_version.rules[0]["text"]
    assert escape(rule_text) in html


def test_per_version_figures_cover_every_run_of_the_version(reviewed_run, make_user, engineer, client):
    # a second run of the same version over the same pairs, one item of it reviewed once
    other = labeling_run_create(
        version=reviewed_run.policy_version, config=reviewed_run.teacher_config, selection=reviewed_run.selection
    )
    first = Candidate.objects.filter(run=other).order_by("id").first()
    Candidate.objects.filter(pk=first.pk).update(
        status="labeled", label="strong_match", routing="needs_review", review_state="pending", reviews_needed=1
    )
    c = make_user("ann_c", roles.ANNOTATOR)
    item = review_claim_next(user=c, run_id=other.pk)
    review_submit(user=c, candidate_id=item.pk, label="strong_match")
    version = reviewed_run.policy_version
    url = f"/api/policies/{version.policy.slug}/versions/{version.number}/agreement"
    figures = client.get(url, **_auth(engineer)).json()
    assert figures["runs"] == [reviewed_run.pk, other.pk]
    assert (figures["reviews"], figures["items_reviewed"], figures["human_approved"]) == (9, 5, 5)
    assert figures["teacher_vs_human"]["accuracy"] == pytest.approx(3 / 5)
    assert client.get(url.replace("/1/", "/9/"), **_auth(engineer)).status_code == 404


def test_no_reviews_yet_shows_undefined_not_an_error(review_items, owner, client_for):
    run = review_items(2)
    response = client_for(owner).get(f"/runs/{run.pk}/agreement/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-value="alpha">undefined<' in html
    assert "No two annotators have reviewed the same item yet." in html
    assert "No items with a human label yet." in html


def test_only_policy_owners_and_ml_engineers_see_agreement(reviewed_run, annotator, nobody, client, client_for):
    version = reviewed_run.policy_version
    pages = [f"/runs/{reviewed_run.pk}/agreement/", f"/policies/{version.policy.slug}/v{version.number}/agreement/"]
    apis = [f"/api/runs/{reviewed_run.pk}/agreement",
            f"/api/policies/{version.policy.slug}/versions/{version.number}/agreement"]  # fmt: skip
    for url in pages:
        assert client.get(url).status_code == 302  # to the login page
    assert client.get(apis[0]).status_code == 401
    for url in apis:  # (users without a role cannot hold a token at all)
        assert client.get(url, **_auth(annotator)).status_code == 403
    for user in (annotator, nobody):
        for url in pages:
            assert client_for(user).get(url).status_code == 403
    assert client_for(nobody).get("/runs/999999/agreement/").status_code == 403
