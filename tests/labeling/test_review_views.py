"""The review queue and the adjudication queue in the browser (Django test client, one client per role). The
candidates come from a real run against the fake teacher whose K samples disagree, so every pair needs review."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Candidate, LabelingRun, Review, ReviewSkip, ReviewState
from labeling.services import labeling_run_create, review_claim_next, review_submit
from policyhub import roles
from policyhub import services as policy_services

K = 3
HTMX = {"HTTP_HX_REQUEST": "true"}
MUST_HAVE = "A must-have is missing: <b>ICU</b>."


def split_vote(request, call_number):
    """Two samples say strong_match citing R2, the third no_match citing R1 and R3: self_disagreement."""
    if call_number % K == K - 1:
        return {"label": "no_match", "rationale": MUST_HAVE, "cited_rules": ["R1", "R3"]}
    return {"label": "strong_match", "rationale": "The seniority fits.", "cited_rules": ["R2"]}


@pytest.fixture
def needs_review(published, openai_config, fake_openai, process_run):
    """A processed run whose every candidate needs review; ``selection`` defaults to all pairs."""

    def make(reviewers: int = 1, selection: dict | None = None) -> LabelingRun:
        fake_openai.responder = split_vote
        run = labeling_run_create(
            version=published, config=openai_config(samples_per_pair=K), selection=selection or {"all": True},
            user=None, reviewers_per_item=reviewers,
        )  # fmt: skip
        run = process_run(run)
        assert set(Candidate.objects.filter(run=run).values_list("review_state", flat=True)) == {"pending"}
        return run

    return make


@pytest.fixture
def second_annotator(make_user):
    return make_user("bea", roles.ANNOTATOR)


def shown(response) -> int | None:
    """The id of the item the response shows."""
    item = response.context["item"]
    return item.candidate.pk if item else None


@pytest.mark.parametrize(("who", "status"), [("annotator", 200), ("owner", 403), ("engineer", 403), ("nobody", 403)])
def test_only_annotators_open_the_review_queue(db, request, client_for, who, status):
    assert client_for(request.getfixturevalue(who)).get("/review/").status_code == status


@pytest.mark.parametrize(("who", "status"), [("owner", 200), ("annotator", 403), ("engineer", 403)])
def test_only_policy_owners_open_the_adjudication_queue(db, request, client_for, who, status):
    assert client_for(request.getfixturevalue(who)).get("/review/adjudication/").status_code == status


@pytest.mark.parametrize("url", ["/review/", "/review/adjudication/"])
def test_anonymous_visitors_are_sent_to_log_in(db, client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post("/review/undo/").status_code == 302


def test_the_nav_links_follow_the_roles(db, owner, annotator, client_for):
    annotator_page = client_for(annotator).get("/").content.decode()
    assert 'href="/review/"' in annotator_page and 'href="/review/adjudication/"' not in annotator_page
    owner_page = client_for(owner).get("/").content.decode()
    assert 'href="/review/adjudication/"' in owner_page and 'href="/review/"' not in owner_page


def test_the_queue_claims_one_item_and_shows_member_job_rationale_and_rule_text(
    pairs, needs_review, annotator, client_for
):
    run = needs_review()
    response = client_for(annotator).get("/review/")
    assert response.status_code == 200
    candidate = Candidate.objects.get(pk=shown(response))
    assert candidate.run == run and candidate.claimed_by == annotator and candidate.claim_expires_at
    page = response.content.decode()
    member, job = candidate.pair.member, candidate.pair.job
    for text in (member.headline, member.location, member.summary, *member.skills, job.title, job.description):
        assert text in page
    assert "The seniority fits." in page and "A must-have is missing: &lt;b&gt;ICU&lt;/b&gt;." in page
    assert "<b>ICU</b>" not in page
    for rule in ("Required skills appear in the member's skills.", "Seniority differs by at most one level.",
                 "Location is compatible or the job is remote."):  # fmt: skip
        assert rule.replace("'", "&#x27;") in page  # the cited rules' text from the run's version
    assert "self_disagreement" in page and "Meets the must-haves." in page  # reasons and label definitions
    numbers = [(label["number"], label["key"]) for label in response.context["item"].labels]
    assert numbers == [(1, "strong_match"), (2, "partial_match"), (3, "no_match")]
    assert page.index('value="strong_match"') < page.index('value="partial_match"') < page.index('value="no_match"')
    assert 'src="/static/review.js"' in page and 'data-number="3"' in page
    # Opening the queue again shows the same item: the annotator holds it.
    assert shown(client_for(annotator).get("/review/")) == candidate.pk


def test_submitting_stores_the_review_and_returns_the_next_item_partial(pairs, needs_review, annotator, client_for):
    needs_review()
    client = client_for(annotator)
    first = shown(client.get("/review/"))
    response = client.post(f"/review/{first}/submit/", {"label": "partial_match", "note": " gaps "}, **HTMX)
    assert response.status_code == 200
    review = Review.objects.get()
    assert (review.candidate_id, review.reviewer, review.label, review.note) == (
        first,
        annotator,
        "partial_match",
        "gaps",
    )
    candidate = Candidate.objects.get(pk=first)
    assert (candidate.review_state, candidate.approved_label, candidate.approved_by) == (
        "done",
        "partial_match",
        "reviewers",
    )
    page = response.content.decode()
    assert "<html" not in page and "Saved partial_match" in page  # a partial, not a page
    following = shown(response)
    assert following not in (None, first)
    assert Candidate.objects.get(pk=following).claimed_by == annotator
    assert f'data-candidate="{following}"' in page and "3 left for you, this one included" in page


def test_without_htmx_a_submission_goes_back_to_the_queue_page(pairs, needs_review, annotator, client_for):
    needs_review()
    client = client_for(annotator)
    first = shown(client.get("/review/"))
    response = client.post(f"/review/{first}/submit/", {"label": "no_match", "run": "", "reason": "low_confidence"})
    assert response.status_code == 302 and response["Location"] == "/review/?reason=low_confidence"
    assert Review.objects.get().label == "no_match"


def test_a_label_outside_the_version_is_refused_and_nothing_is_stored(pairs, needs_review, annotator, client_for):
    needs_review()
    client = client_for(annotator)
    first = shown(client.get("/review/"))
    response = client.post(f"/review/{first}/submit/", {"label": "maybe", "note": "keep me"}, **HTMX)
    assert response.status_code == 400
    page = response.content.decode()
    assert "&#x27;maybe&#x27; is not a label of this policy version" in page and 'role="alert"' in page
    assert not Review.objects.exists()
    candidate = Candidate.objects.get(pk=first)
    assert (candidate.review_state, candidate.reviews_done, candidate.claimed_by) == ("pending", 0, annotator)
    assert shown(response) == first and "keep me" in page  # the same item again, the note kept


def test_submitting_an_item_another_annotator_holds_is_refused(
    pairs, needs_review, annotator, second_annotator, client_for
):
    needs_review()
    theirs = review_claim_next(user=second_annotator)
    response = client_for(annotator).post(f"/review/{theirs.pk}/submit/", {"label": "no_match"}, **HTMX)
    assert response.status_code == 400
    assert "another annotator took it: nothing was saved" in response.content.decode()
    assert not Review.objects.exists()
    assert Candidate.objects.get(pk=theirs.pk).claimed_by == second_annotator
    assert shown(response) != theirs.pk  # this annotator gets an item of their own


def test_skipping_gives_the_item_back_and_never_offers_it_again(pairs, needs_review, annotator, client_for):
    needs_review()
    client = client_for(annotator)
    first = shown(client.get("/review/"))
    response = client.post(f"/review/{first}/skip/", **HTMX)
    assert response.status_code == 200 and f"Skipped item #{first}" in response.content.decode()
    assert ReviewSkip.objects.filter(candidate_id=first, reviewer=annotator).exists()
    assert Candidate.objects.get(pk=first).claimed_by is None
    offered = {shown(response)}
    for _ in range(3):
        offered.add(shown(client.post(f"/review/{max(offered)}/skip/", **HTMX)))
    assert first not in offered and None in offered  # four items, all skipped: nothing left for this annotator
    assert "Nothing to review" in client.get("/review/").content.decode()


def test_undo_takes_back_the_last_review_and_shows_that_item_again(pairs, needs_review, annotator, client_for):
    needs_review()
    client = client_for(annotator)
    nothing = client.post("/review/undo/", **HTMX)
    assert nothing.status_code == 400 and "There is no review of yours to undo." in nothing.content.decode()
    first = shown(client.get("/review/"))
    second = shown(client.post(f"/review/{first}/submit/", {"label": "strong_match"}, **HTMX))
    response = client.post("/review/undo/", **HTMX)
    assert response.status_code == 200 and shown(response) == first
    assert f"Took back your review of item #{first}" in response.content.decode()
    assert not Review.objects.exists()
    candidate = Candidate.objects.get(pk=first)
    assert (candidate.review_state, candidate.approved_label, candidate.claimed_by) == ("pending", "", annotator)
    # Re-submitted, the queue goes on with the item that was showing before the undo.
    again = client.post(f"/review/{first}/submit/", {"label": "no_match"}, **HTMX)
    assert shown(again) == second and Review.objects.get().label == "no_match"


def test_the_empty_queue_says_so_with_the_filters(pairs, needs_review, annotator, client_for):
    run = needs_review()
    client = client_for(annotator)
    page = client.get(f"/review/?run={run.pk}&reason=gold_conflict").content.decode()
    assert "Nothing to review" in page and f"run #{run.pk}" in page and "reason gold_conflict" in page
    assert f'<option value="{run.pk}" selected>' in page
    assert shown(client.get("/review/?run=999999")) is None
    assert shown(client.get(f"/review/?run={run.pk}&reason=self_disagreement")) is not None


def _disagree(run, first, second, labels=("strong_match", "no_match")) -> Candidate:
    """Both annotators review the same item and disagree: it goes to adjudication."""
    candidate = review_claim_next(user=first, run_id=run.pk)
    review_submit(user=first, candidate_id=candidate.pk, label=labels[0], note="fits")
    assert review_claim_next(user=second, run_id=run.pk).pk == candidate.pk
    return review_submit(user=second, candidate_id=candidate.pk, label=labels[1], note="ICU is missing")


def test_a_policy_owner_adjudicates_a_disagreement_with_a_reason(
    pairs, needs_review, annotator, second_annotator, owner, client_for
):
    run = needs_review(reviewers=2)
    candidate = _disagree(run, annotator, second_annotator)
    assert candidate.review_state == ReviewState.ADJUDICATION
    client = client_for(owner)
    page = client.get("/review/adjudication/").content.decode()
    assert f'id="adj-{candidate.pk}"' in page
    for text in ("arjun", "bea", "fits", "ICU is missing", candidate.pair.job.title):
        assert text in page

    url = f"/review/adjudication/{candidate.pk}/"
    refused = client.post(url, {"label": "no_match", "reason": "  "}, **HTMX)
    assert refused.status_code == 400 and "Say why" in refused.content.decode()
    assert 'value="no_match" required checked' in refused.content.decode()  # the choice is kept
    bad_label = client.post(url, {"label": "maybe", "reason": "why not"}, **HTMX)
    assert bad_label.status_code == 400 and "is not a label of this policy version" in bad_label.content.decode()
    assert not Review.objects.filter(kind="adjudication").exists()
    assert Candidate.objects.get(pk=candidate.pk).review_state == "adjudication"

    decided = client.post(url, {"label": "no_match", "reason": "ICU is a must-have (R1)."}, **HTMX)
    assert decided.status_code == 200
    text = decided.content.decode()
    assert "decided by <strong>olivia</strong>" in text and "ICU is a must-have (R1)." in text
    candidate.refresh_from_db()
    assert (candidate.review_state, candidate.approved_label, candidate.approved_by) == (
        "done",
        "no_match",
        "adjudicator",
    )
    again = client.post(url, {"label": "strong_match", "reason": "changed my mind"}, **HTMX)
    assert again.status_code == 400 and "not waiting for adjudication" in again.content.decode()

    page = client.get("/review/adjudication/").content.decode()
    assert f'id="adj-{candidate.pk}"' not in page and "Nothing to adjudicate" in page
    assert f'<tr data-candidate="{candidate.pk}">' in page and "ICU is a must-have (R1)." in page  # who and why


def test_only_policy_owners_adjudicate(pairs, needs_review, annotator, second_annotator, engineer, client_for):
    run = needs_review(reviewers=2)
    candidate = _disagree(run, annotator, second_annotator)
    for user in (annotator, engineer):
        response = client_for(user).post(f"/review/adjudication/{candidate.pk}/", {"label": "no_match", "reason": "x"})
        assert response.status_code == 403
    assert Candidate.objects.get(pk=candidate.pk).review_state == "adjudication"


def test_the_adjudication_list_does_not_query_per_item(
    pairs, needs_review, annotator, second_annotator, owner, client_for
):
    run = needs_review(reviewers=2)
    client = client_for(owner)
    _disagree(run, annotator, second_annotator)
    client.get("/review/adjudication/")
    with CaptureQueriesContext(connection) as one:
        client.get("/review/adjudication/")
    for _ in range(3):
        _disagree(run, annotator, second_annotator)
    with CaptureQueriesContext(connection) as four:
        page = client.get("/review/adjudication/").content.decode()
    assert page.count('class="card adjudication"') == 4
    assert len(four) == len(one)


def test_html_in_a_job_description_is_escaped(
    members_and_jobs, do_import, needs_review, annotator, second_annotator, owner, client_for
):
    hostile = {"job_id": "evil", "title": "Clerk <i>now</i>", "description": "<script>alert('x')</script> Filing."}
    assert do_import("jobs", "evil.jsonl", json.dumps(hostile)).ok
    batch = do_import("pairs", "evil.csv", "member_id,job_id\nm1,evil\n").batch
    run = needs_review(reviewers=2, selection={"import_batch": batch.pk})
    page = client_for(annotator).get("/review/").content.decode()
    assert "<script>alert" not in page and "<i>now</i>" not in page
    assert (
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Filing." in page and "Clerk &lt;i&gt;now&lt;/i&gt;" in page
    )
    _disagree(run, annotator, second_annotator)
    adjudication = client_for(owner).get("/review/adjudication/").content.decode()
    assert "<script>alert" not in adjudication and "&lt;script&gt;alert" in adjudication


def test_runs_take_reviewers_per_item_in_the_form_and_the_api(pairs, published, make_config, engineer, client_for):
    config = make_config(provider="heuristic", model="rules")
    client = client_for(engineer)
    form = {"version": published.pk, "config": config.pk, "min_vote_share": 0.8, "min_confidence": 0.7,
            "chunk_size": 500, "start": "1"}  # fmt: skip
    assert client.post("/runs/new/", {**form, "reviewers_per_item": 4}).status_code == 400
    assert client.post("/runs/new/", {**form, "reviewers_per_item": 2}).status_code == 302
    assert LabelingRun.objects.get().reviewers_per_item == 2

    token = policy_services.api_token_create(user=engineer, name="pipeline").raw
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    body = {"policy": "match", "version": 1, "teacher": config.name}
    created = client.post("/api/runs", {**body, "reviewers_per_item": 3}, content_type="application/json", **auth)
    assert created.status_code == 201 and created.json()["reviewers_per_item"] == 3
    assert LabelingRun.objects.get(pk=created.json()["id"]).reviewers_per_item == 3
    default = client.post("/api/runs", body, content_type="application/json", **auth)
    assert default.json()["reviewers_per_item"] == 1
    bad = client.post("/api/runs", {**body, "reviewers_per_item": 0}, content_type="application/json", **auth)
    assert bad.status_code == 400 and "reviewers_per_item" in bad.json()["detail"]


def test_a_long_queue_says_more_than_the_cap_instead_of_counting_it_all(
    pairs, needs_review, annotator, client_for, monkeypatch
):
    from labeling.selectors import reviews as review_selectors

    needs_review()
    monkeypatch.setattr(review_selectors, "QUEUE_COUNT_CAP", 2)
    page = client_for(annotator).get("/review/").content.decode()
    assert "More than 2 left for you" in page
