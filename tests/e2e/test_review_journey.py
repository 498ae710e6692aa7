"""An annotator reviews three items with the keyboard only (undoing one and re-submitting it), a second annotator
disagrees on one of them with the mouse, and a policy owner adjudicates it in the browser.

The run's candidates are made in-process before the browser starts: the fake OpenAI teacher's K = 3 samples
disagree on every pair, so all four pairs need review, by two annotators each (``reviewers_per_item=2``).
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from labeling.models import Candidate, Review
from labeling.services import labeling_run_create
from policyhub import roles
from tests.labeling.conftest import (  # noqa: F401 - the labeling fixtures this journey builds on
    do_import,
    fake_openai,
    make_config,
    members_and_jobs,
    openai_config,
    pairs,
    process_run,
    published,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SCREENSHOT = Path("/tmp/review_page.png")
ADJUDICATION_SCREENSHOT = Path("/tmp/adjudication_page.png")
AGREEMENT_SCREENSHOT = Path("/tmp/agreement_page.png")
K = 3


def split_vote(request, call_number):
    if call_number % K == K - 1:
        return {"label": "no_match", "rationale": "A must-have skill is missing.", "cited_rules": ["R1"]}
    return {"label": "strong_match", "rationale": "Skills and seniority fit.", "cited_rules": ["R1", "R2"]}


@pytest.fixture
def review_run(pairs, published, openai_config, fake_openai, process_run):  # noqa: F811 - imported fixtures
    """Made before the browser starts (so list it before ``page``): the teacher runs in this thread."""
    fake_openai.responder = split_vote
    config = openai_config(samples_per_pair=K)
    run = labeling_run_create(
        version=published, config=config, selection={"all": True}, user=None, reviewers_per_item=2
    )
    return process_run(run)


def current_item(page, candidate_id: int):
    item = page.locator("#review-item article.review")
    expect(item).to_have_attribute("data-candidate", str(candidate_id))
    return item


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login/|/$"))


def test_two_annotators_review_and_a_policy_owner_adjudicates(review_run, page, login, make_user):
    first, second = make_user("arjun", roles.ANNOTATOR), make_user("bea", roles.ANNOTATOR)
    owner = make_user("odette", roles.POLICY_OWNER)
    c1, c2, c3, c4 = Candidate.objects.filter(run=review_run).order_by("id").values_list("id", flat=True)

    # --- the first annotator, keyboard only -------------------------------------------------------------------
    login(first)
    plain_posts = []  # review actions that loaded a page instead of going through htmx
    page.on(
        "request",
        lambda r: plain_posts.append(r.url) if r.method == "POST" and "/review/" in r.url and not r.headers.get(
            "hx-request") else None,
    )  # fmt: skip
    page.goto("/review/")
    current_item(page, c1)
    expect(page.locator("#review-teacher")).to_contain_text("Required skills appear in the member's skills.")
    page.evaluate("window.__reviewMarker = 'same page'")

    page.keyboard.press("1")
    expect(page.locator('#review-form input[value="strong_match"]')).to_be_checked()
    page.keyboard.press("Enter")
    current_item(page, c2)
    expect(page.locator("#review-info")).to_contain_text(f"Saved strong_match for item #{c1}")

    page.keyboard.press("3")
    page.keyboard.press("Enter")
    current_item(page, c3)

    # u takes the review of c2 back: it is shown again, and re-submitted with another label.
    page.keyboard.press("u")
    current_item(page, c2)
    expect(page.locator("#review-info")).to_contain_text(f"Took back your review of item #{c2}")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    current_item(page, c3)  # the item it held before the undo

    # n: a note (typed letters are not shortcuts); Enter in the note submits.
    page.keyboard.press("1")
    page.keyboard.press("n")
    expect(page.locator("#review-note")).to_be_focused()
    page.keyboard.type("Seniority is unclear; skills fit.")
    expect(page.locator("#review-note")).to_have_value("Seniority is unclear; skills fit.")
    expect(page.locator('#review-form input[value="strong_match"]')).to_be_checked()
    page.keyboard.press("Enter")
    current_item(page, c4)

    # ? shows the keys, and hides them again.
    expect(page.locator("#key-help")).to_be_hidden()
    page.keyboard.press("?")
    expect(page.locator("#key-help")).to_be_visible()
    expect(page.locator("#key-help")).to_contain_text("undo your last submission")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.keyboard.press("?")
    expect(page.locator("#key-help")).to_be_hidden()

    # Everything happened on the page first loaded: no navigation, no reload.
    assert page.evaluate("window.__reviewMarker") == "same page"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert page.evaluate("performance.getEntriesByType('navigation')[0].type") == "navigate"
    assert plain_posts == []
    mine = dict(Review.objects.filter(reviewer=first).values_list("candidate_id", "label"))
    assert mine == {c1: "strong_match", c2: "partial_match", c3: "strong_match"}
    assert Review.objects.get(reviewer=first, candidate_id=c3).note == "Seniority is unclear; skills fit."
    assert page.js_errors == []
    log_out(page)

    # --- the second annotator, with the mouse: agrees on c1, disagrees on c2 ---------------------------------
    login(second)
    page.goto("/review/")
    current_item(page, c1)  # c4 is still held by the first annotator
    page.locator("#review-form label.choice", has_text="Strong match").click()
    page.get_by_role("button", name=re.compile("^Submit")).click()
    current_item(page, c2)
    page.locator("#review-form label.choice", has_text="No match").click()
    page.locator("#review-note").fill("ICU experience is a must-have.")
    page.get_by_role("button", name=re.compile("^Submit")).click()
    current_item(page, c3)
    assert page.js_errors == []
    log_out(page)

    # --- the policy owner adjudicates c2 ------------------------------------------------------------------------
    login(owner)
    page.get_by_role("link", name="Adjudication").click()
    item = page.locator(f"#adj-{c2}")
    expect(page.locator("article.adjudication")).to_have_count(1)
    expect(item.locator('tr[data-reviewer="arjun"]')).to_contain_text("partial_match")
    expect(item.locator('tr[data-reviewer="bea"]')).to_contain_text("ICU experience is a must-have.")
    page.evaluate("window.__adjudicationMarker = 'same page'")
    item.locator("label.choice", has_text="No match").click()
    item.get_by_role("button", name="Decide").click()  # no reason: the browser asks for one first
    expect(page.locator(f"#adj-{c2} .decision")).to_have_count(0)
    page.locator(f"#adj-reason-{c2}").fill("ICU experience is required by R1.")
    item.get_by_role("button", name="Decide").click()
    decision = page.locator(f"#adj-{c2} .decision")
    expect(decision).to_contain_text("decided by odette")
    expect(decision).to_contain_text("ICU experience is required by R1.")
    page.screenshot(path=str(ADJUDICATION_SCREENSHOT), full_page=True)
    assert page.evaluate("window.__adjudicationMarker") == "same page"
    assert plain_posts == []
    assert page.js_errors == []

    approved = {
        c.pk: (c.review_state, c.approved_label, c.approved_by)
        for c in Candidate.objects.filter(run=review_run)
    }  # fmt: skip
    assert approved == {
        c1: ("done", "strong_match", "reviewers"),
        c2: ("done", "no_match", "adjudicator"),
        c3: ("pending", "", ""),
        c4: ("pending", "", ""),
    }
    final = Review.objects.get(candidate_id=c2, kind="adjudication")
    assert (final.reviewer, final.label, final.note) == (owner, "no_match", "ICU experience is required by R1.")

    # --- the agreement page shows what these reviews imply ------------------------------------------------------
    # Reviews: c1 arjun strong / bea strong, c2 arjun partial / bea no, c3 arjun strong. The teacher said
    # strong_match on every pair with 2 of 3 votes (confidence 2/3); humans approved c1 strong and c2 no.
    #   Cohen's κ(arjun, bea) over c1, c2: observed ½, expected ½·½ = ¼ → κ = ¼ / ¾ = 0.333
    #   Krippendorff's α over c1, c2: values strong ×2, partial, no → 1 − 3·2 / (16 − 6) = 0.4
    #   teacher vs human: 1 of 2 right; both at confidence 0.667 → ECE |0.5 − 0.667| = 0.167
    page.goto(f"/policies/{review_run.policy_version.policy.slug}/v{review_run.policy_version.number}/")
    page.get_by_role("link", name="Agreement and teacher accuracy").click()
    expect(page.locator("h1")).to_contain_text("Agreement")
    counts = page.locator("#agreement-counts")
    for name, value in {"reviews": "5", "items-reviewed": "3", "items-multi": "2", "adjudicated": "1",
                        "human-approved": "2"}.items():  # fmt: skip
        expect(counts.locator(f'[data-value="{name}"]')).to_have_text(value)
    expect(page.locator('tr[data-pair="arjun|bea"] [data-value="kappa"]')).to_have_text("0.333")
    expect(page.locator('[data-value="alpha"]')).to_have_text("0.400")
    expect(page.locator('[data-value="accuracy"]')).to_have_text("0.500")
    expect(page.locator('[data-value="ece"]')).to_have_text("0.167")
    confusion = page.locator("table.confusion")
    expect(confusion.locator('[data-cell="strong_match|0"]')).to_have_text("1")  # human strong, teacher strong
    expect(confusion.locator('[data-cell="no_match|0"]')).to_have_text("1")  # human no, teacher strong
    expect(page.locator('tr[data-rule="R1"]')).to_contain_text("0.500")
    page.screenshot(path=str(AGREEMENT_SCREENSHOT), full_page=True)
    assert page.js_errors == []
