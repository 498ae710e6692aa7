"""A policy owner sets a quality gate on the policy page, previews the edited draft on the gold set while a real
Celery worker labels it with a fake OpenAI teacher that does badly, sees the failed gate on the publish page,
overrides it with a written reason, publishes, and finds the gate record with the reason on the version page."""

import re

import pytest
from playwright.sync_api import expect

from tests.labeling.gold_helpers import DRAFT_MARK, pair_of

from .conftest import GOLD, override_and_publish

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

REASON = "Gold for no_match is being relabelled this week; the legal review signed off on v2."


def responder(request, call_number):
    """v1 agrees with gold; the edited draft says strong_match for everyone: 3 of 5 right on gold."""
    member, _ = pair_of(request)
    is_draft = DRAFT_MARK in request["messages"][0]["content"]
    label = "strong_match" if is_draft else GOLD[member]
    return {
        "label": label,
        "rationale": f"{'Draft' if is_draft else 'v1'}: {label} for {member}.",
        "cited_rules": ["R1"],
    }


def test_owner_overrides_a_failed_gate_with_a_reason_and_finds_the_record(page, login, policy, owner, gold_worker,
                                                                          tmp_path):  # fmt: skip
    gold_worker.server.responder = responder
    login(owner)

    # 1. Set a minimum gold accuracy of 0.9 on the policy page (the other gates off).
    page.goto(f"/policies/{policy.slug}/")
    expect(page.locator("#no-gates")).to_be_visible()
    page.locator("#gates-editor summary").click()
    form = page.locator("#gates-form")
    for field in form.locator('input[type="number"]').all():
        field.fill("")
    form.locator('input[name="min_gold_accuracy"]').fill("0.9")
    form.get_by_role("button", name="Save quality gates").click()
    expect(page.locator(".messages")).to_contain_text("Saved the quality gates")
    expect(page.locator("#gate-thresholds")).to_contain_text("Minimum gold accuracy")
    expect(page.locator("#gate-thresholds")).to_contain_text("0.900")

    # 2. Edit the draft; publishing now asks for a preview first.
    page.goto(f"/policies/{policy.slug}/draft/")
    page.fill("#id_body", f"# Match policy\n\n{DRAFT_MARK}\n")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".messages")).to_contain_text("Saved draft v2 (revision 2)")
    page.get_by_role("link", name="Publish… (quality gates)").click()
    expect(page.locator("#gate-verdict")).to_contain_text("Draft v2 has not been previewed on the gold set")
    expect(page.locator("#publish-form")).to_have_count(0)

    # 3. Preview it on the gold set with the fake teacher (it does badly on the draft).
    page.goto(f"/policies/{policy.slug}/draft/")
    panel = page.locator("#gold-preview-panel")
    panel.locator('select[name="config"]').select_option(label="fake-gpt (openai:fake-teacher)")
    panel.get_by_role("button", name="Preview on gold set").click()
    page.wait_for_url(re.compile(r"/policies/match/draft/gold-preview/\d+/$"))
    expect(page.locator("#preview-status")).to_have_text("Done", timeout=30_000)
    expect(page.locator("#draft-accuracy")).to_contain_text("0.600 (3 of 5)")

    # 4. The publish page shows the failed gate; publishing without a reason is refused.
    page.goto(f"/policies/{policy.slug}/draft/publish/")
    expect(page.locator("#gate-verdict")).to_contain_text("1 gate blocks publishing")
    row = page.locator('#gate-results tr[data-gate="min_gold_accuracy"]')
    expect(row).to_have_attribute("data-status", "failed")
    expect(row).to_contain_text("0.600")
    expect(row).to_contain_text("≥ 0.900")
    expect(page.locator("#publish")).to_have_count(0)
    page.fill("#id_override_reason", "   ")
    page.get_by_role("button", name="Override the failing gates and publish v2").click()
    expect(page.locator("#publish-error")).to_contain_text("an override needs a reason")
    assert policy.versions.get(number=2).status == "draft"

    # 5. Override with a reason, publish, and find the record on the version page.
    override_and_publish(page, policy=policy, owner=owner, reason=REASON, failed_gate="min_gold_accuracy")
    assert page.js_errors == []
    page.screenshot(path=str(tmp_path / "quality_gates.png"), full_page=True)
