"""An annotator, in the middle of reviewing an item with the keyboard, flags rule R2 as unclear without losing the
label and note they had started; the policy owner sees the flag next to R2 in the draft editor and in the
feedback inbox, and resolves it in the draft v2.

The run is made in-process before the browser starts: the fake OpenAI teacher's K = 3 samples disagree on every
pair (two say strong_match citing R2, one no_match citing R1 and R3), so every pair needs review.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from labeling.models import PolicyFeedback, Review
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

REVIEW_SCREENSHOT = Path("/tmp/feedback_review_page.png")
INBOX_SCREENSHOT = Path("/tmp/feedback_inbox.png")
EDITOR_SCREENSHOT = Path("/tmp/feedback_draft_editor.png")
K = 3
NOTE = "Does 'at most one level' allow mid → senior? <b>Two readings</b>."


def split_vote(request, call_number):
    if call_number % K == K - 1:
        return {"label": "no_match", "rationale": "A must-have skill is missing.", "cited_rules": ["R1", "R3"]}
    return {"label": "strong_match", "rationale": "Skills and seniority fit.", "cited_rules": ["R2"]}


@pytest.fixture
def review_run(pairs, published, openai_config, fake_openai, process_run):  # noqa: F811 - imported fixtures
    """Made before the browser starts (so list it before ``page``): the teacher runs in this thread."""
    fake_openai.responder = split_vote
    run = labeling_run_create(
        version=published, config=openai_config(samples_per_pair=K), selection={"all": True}, user=None
    )
    return process_run(run)


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login/|/$"))


def test_an_annotator_flags_an_unclear_rule_and_the_policy_owner_resolves_it(review_run, page, login, make_user):
    annotator, owner = make_user("arjun", roles.ANNOTATOR), make_user("odette", roles.POLICY_OWNER)

    # --- the annotator, keyboard only -------------------------------------------------------------------------
    login(annotator)
    page.goto("/review/")
    item = page.locator("#review-item article.review")
    candidate_id = int(item.get_attribute("data-candidate"))
    page.evaluate("window.__reviewMarker = 'same page'")
    page.keyboard.press("3")  # no_match: against the teacher's strong_match
    page.keyboard.press("n")
    page.keyboard.type("Seniority gap of one level.")
    page.keyboard.press("Escape")

    page.keyboard.press("f")
    panel = page.locator("#feedback-panel")
    expect(panel).to_have_attribute("open", "")
    expect(panel.locator('input[value="unclear_rule"]')).to_be_focused()
    expect(panel.locator('[data-rule="R2"]').locator("..")).to_contain_text("cited by the teacher")
    page.keyboard.press("Tab")
    expect(page.locator("#feedback-rules")).to_be_focused()
    page.keyboard.type("R9")  # not a rule of v1: refused, and nothing typed is lost
    page.keyboard.press("Tab")
    page.keyboard.type(NOTE)
    page.keyboard.press("Enter")
    expect(page.locator("#feedback-error")).to_contain_text("R9 is not a rule of match v1")
    expect(page.locator("#feedback-rules")).to_be_focused()
    expect(page.locator("#feedback-note")).to_have_value(NOTE)
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("R2")
    page.keyboard.press("Enter")

    expect(page.locator("#feedback-info")).to_contain_text("sent: unclear_rule on R2")
    expect(page.locator("#feedback-panel")).not_to_have_attribute("open", "")
    expect(page.locator('#review-form input[value="no_match"]')).to_be_checked()  # the review in progress stays
    expect(page.locator("#review-note")).to_have_value("Seniority gap of one level.")
    expect(item).to_have_attribute("data-candidate", str(candidate_id))
    page.screenshot(path=str(REVIEW_SCREENSHOT), full_page=True)
    page.keyboard.press("Enter")  # the review itself, submitted as before
    expect(page.locator("#review-info")).to_contain_text(f"Saved no_match for item #{candidate_id}")
    assert page.evaluate("window.__reviewMarker") == "same page"
    assert page.js_errors == []

    review = Review.objects.get(candidate_id=candidate_id)
    assert (review.reviewer, review.label, review.note) == (annotator, "no_match", "Seniority gap of one level.")
    feedback = PolicyFeedback.objects.get()
    assert (feedback.candidate_id, feedback.kind, feedback.rule_ids, feedback.note, feedback.created_by) == (
        candidate_id, "unclear_rule", ["R2"], NOTE, annotator)  # fmt: skip
    log_out(page)

    # --- the policy owner: the draft editor, then the inbox -----------------------------------------------------
    login(owner)
    page.goto("/policies/match/")
    page.get_by_role("link", name="Edit draft v2").click()
    r2 = page.locator('[data-rule-feedback="R2"]')
    expect(r2.locator('[data-value="open-flags"]')).to_have_text("1 open flag")
    expect(r2.locator('[data-value="overrides"]')).to_contain_text("overrode the teacher on 1 of 1 reviewed item "
                                                                    "citing R2 (100 %)")  # fmt: skip
    expect(page.locator('[data-rule-feedback="R1"] [data-value="open-flags"]')).to_have_text("No open flags")
    r2.locator("..").screenshot(path=str(EDITOR_SCREENSHOT))  # the rule's row
    r2.get_by_role("link", name="1 open flag").click()

    page.wait_for_url(re.compile(r"/policies/match/feedback/\?status=open&rule=R2"))
    row = page.locator(f'#feedback-list tr[data-feedback="{feedback.pk}"]')
    expect(row).to_contain_text("unclear_rule")
    expect(row).to_contain_text("<b>Two readings</b>")  # the note as text, not markup
    expect(row.locator("b")).to_have_count(0)
    expect(row).to_contain_text("arjun")
    row.locator(".resolve-form select").select_option("2")
    row.locator('.resolve-form input[name="note"]').fill("R2 now says: one level up or down, e.g. mid → senior.")
    page.screenshot(path=str(INBOX_SCREENSHOT), full_page=True)
    row.get_by_role("button", name="Resolve").click()

    expect(page.locator(".messages")).to_contain_text(f"Feedback #{feedback.pk} is resolved in v2.")
    expect(page.locator("#feedback-empty")).to_be_visible()  # no open flag on R2 left
    page.get_by_role("link", name=re.compile("^Resolved")).click()
    expect(page.locator(f'tr[data-feedback="{feedback.pk}"] .outcome')).to_contain_text("resolved in v2")
    expect(page.locator(f'tr[data-feedback="{feedback.pk}"] .outcome')).to_contain_text("by odette")
    page.goto("/policies/match/draft/")
    expect(page.locator('[data-rule-feedback="R2"] [data-value="open-flags"]')).to_have_text("No open flags")
    assert page.js_errors == []

    feedback.refresh_from_db()
    assert (feedback.status, feedback.resolved_in_version.number, feedback.closed_by) == ("resolved", 2, owner)


def test_a_policy_owner_flags_an_item_from_the_run_page_and_reopens_the_dismissed_flag(
    review_run, page, login, make_user
):
    """The owner's flag form swaps in place (htmx, under the page's Content-Security-Policy); a refused flag keeps
    what was typed; the flag, dismissed and then reopened, shows its history in the inbox."""
    owner = make_user("odette", roles.POLICY_OWNER)
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    login(owner)
    page.goto(f"/runs/{review_run.pk}/")
    box = page.locator(".flag-item").first
    box.locator("summary").click()
    box.locator("select[name=kind]").select_option("rules_conflict")
    box.locator("input[name=rule_ids]").fill("R2")
    box.locator("textarea[name=note]").fill(NOTE)
    box.get_by_role("button", name="Send flag").click()
    box = page.locator(".flag-item").first
    expect(box.get_by_role("alert")).to_contain_text("Name at least two rules that conflict")
    expect(box.locator("textarea[name=note]")).to_have_value(NOTE)  # kept, nothing saved
    assert not PolicyFeedback.objects.exists()

    box.locator("input[name=rule_ids]").fill("R2, R3")
    box.get_by_role("button", name="Send flag").click()
    expect(page.locator(".flag-item").first.get_by_role("status")).to_contain_text("sent: rules_conflict on R2, R3")
    feedback = PolicyFeedback.objects.get()
    assert (feedback.created_by, feedback.rule_ids, feedback.note) == (owner, ["R2", "R3"], NOTE)

    page.goto("/policies/match/feedback/")
    row = page.locator(f'tr[data-feedback="{feedback.pk}"]')
    row.get_by_label(f"Why dismiss #{feedback.pk}").fill("Not a conflict: R3 is about location.")
    row.get_by_role("button", name="Dismiss").click()
    page.goto("/policies/match/feedback/?status=dismissed")
    row = page.locator(f'tr[data-feedback="{feedback.pk}"]')
    row.get_by_label(f"Why reopen #{feedback.pk}").fill("It is a conflict for remote jobs.")
    row.get_by_role("button", name="Reopen").click()
    expect(page.locator(".messages")).to_contain_text(f"Feedback #{feedback.pk} is open again")
    page.goto("/policies/match/feedback/")
    row = page.locator(f'tr[data-feedback="{feedback.pk}"]')
    row.get_by_text("Reopened 1 time").click()
    expect(row.locator(".feedback-history")).to_contain_text("It was dismissed by odette")
    expect(row.locator(".feedback-history")).to_contain_text("It is a conflict for remote jobs.")
    assert page.js_errors == [] and violations == []
