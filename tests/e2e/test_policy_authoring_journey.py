"""A policy owner edits a draft in the browser, previews its prompt, publishes it and compares the versions."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from policyhub import roles

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

NEW_RULE = "A portfolio link counts as evidence of design skills."
SCREENSHOT = Path("/tmp/diff.png")


@pytest.fixture
def policy_owner(make_user):
    return make_user("polly", roles.POLICY_OWNER)


def test_owner_edits_previews_publishes_and_compares(page, login, policy, policy_owner):
    login(policy_owner)
    page.goto(f"/policies/{policy.slug}/draft/")
    expect(page.locator("main h1").first).to_have_text(re.compile("^Draft v2"))

    # The markdown body: the live preview renders what is typed.
    body = page.locator("#id_body")
    body.click()
    body.press("Control+End")
    body.press_sequentially("\n## Portfolios\n\nLook at the *work*, not the title.\n")
    preview = page.locator("#body-preview")
    expect(preview.locator("h2")).to_have_text("Portfolios")
    expect(preview.locator("em")).to_have_text("work")

    # A new rule with an empty ID gets the next free one.
    page.get_by_role("button", name="Add rule").click()
    new_row = page.locator("#rule-rows .row.rules").nth(3)
    expect(new_row.locator("input[name='rules-3-id']")).to_have_value("")
    new_row.locator("textarea[name='rules-3-text']").fill(NEW_RULE)
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".messages")).to_contain_text("Saved draft v2")
    expect(page.locator("input[name='rules-3-id']")).to_have_value("R4")
    expect(page.locator("#body-preview h2")).to_have_text("Portfolios")  # server-rendered after the reload

    # The prompt preview shows the saved draft, with the new rule as R4.
    page.get_by_role("link", name=re.compile("Prompt preview")).click()
    prompt = page.locator("#system-prompt")
    expect(prompt).to_contain_text(f"- R4: {NEW_RULE}")
    expect(prompt).to_contain_text("## Portfolios")

    # Back to the editor, then publish.
    page.go_back()
    page.get_by_role("button", name="Save and publish v2").click()
    expect(page.locator(".messages")).to_contain_text("Published v2")
    policy.refresh_from_db()
    v2 = policy.versions.get(number=2)
    assert v2.status == "published"
    assert "\r" not in v2.body  # browsers send CRLF; the editor stores LF
    assert v2.rules[3] == {"id": "R4", "text": NEW_RULE, "positive_examples": [], "negative_examples": []}

    # Compare v1 with v2: R4 is added, the others unchanged, the body changed.
    page.goto(f"/policies/{policy.slug}/compare/?from=1&to=2")
    added = page.locator('tr[data-rule="R4"]')
    expect(added).to_have_class(re.compile(r"\badded\b"))
    expect(added).to_contain_text(NEW_RULE)
    expect(page.locator("tr[data-rule]")).to_have_count(1)
    expect(page.locator("table.diff")).to_contain_text("## Portfolios")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert page.js_errors == []


def test_annotator_cannot_open_the_draft_editor(page, login, policy, annotator):
    login(annotator)
    response = page.goto(f"/policies/{policy.slug}/draft/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You can't do that")
    expect(page.locator("#id_body")).to_have_count(0)


def test_markup_in_the_body_never_runs_in_the_browser(page, login, policy, owner):
    login(owner)
    page.goto(f"/policies/{policy.slug}/draft/")
    body = page.locator("#id_body")
    body.fill("")
    body.press_sequentially(
        '# Safe\n\n<img src=x onerror="window.__xss=1">\n\n<script>window.__xss=2</script>\n\n'
        "[click](javascript:window.__xss=3)\n"
    )
    preview = page.locator("#body-preview")
    expect(preview.locator("h1")).to_have_text("Safe")
    expect(preview).to_contain_text('<img src=x onerror="window.__xss=1">')  # shown as text, not an element
    expect(preview).to_contain_text("<script>window.__xss=2</script>")
    expect(preview.locator("img, script, [onerror]")).to_have_count(0)
    expect(preview.locator("a[href^='javascript']")).to_have_count(0)
    assert page.evaluate("typeof window.__xss") == "undefined"

    # Saved and rendered by the server, it stays inert too.
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".messages")).to_contain_text("Saved draft v2")
    expect(page.locator("#body-preview h1")).to_have_text("Safe")
    expect(page.locator("#body-preview").locator("img, script, [onerror]")).to_have_count(0)
    expect(page.locator("#body-preview a[href^='javascript']")).to_have_count(0)
    assert page.evaluate("typeof window.__xss") == "undefined"
