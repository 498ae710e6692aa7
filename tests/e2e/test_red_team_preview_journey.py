"""A policy owner builds a red-team set on the Red-team page, sets a flip-rate gate, previews the edited draft while
a real Celery worker labels the gold set and the red-team set with a fake OpenAI teacher that is right on gold but
flips its label on protected-attribute cues, sees the attack and flip rates next to the gold figures on the
preview page, the failed flip-rate gate on the publish page, overrides it with a reason, publishes, and finds the
gate record (with the preview's red-team run) on the version page."""

import re

import pytest
from playwright.sync_api import expect

from labeling.models import DraftPreview, RedTeamSet
from tests.fakes.openai_server import BiasedResponder
from tests.labeling.gold_helpers import DRAFT_MARK, pair_of

from .conftest import GOLD, override_and_publish

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

REASON = "The counterfactual flips come from the teacher, not the policy; v3 pins a fairer teacher."


def right_on_gold(request, call_number):
    """Every version agrees with gold on the clean pairs (the red-team variants keep their pair's ids)."""
    member, _ = pair_of(request)
    label = GOLD[member]
    return {"label": label, "rationale": f"{label} for {member}.", "cited_rules": ["R1"]}


def test_owner_previews_gold_and_red_team_overrides_the_flip_gate_and_finds_the_record(
    page, login, policy, owner, gold_worker, tmp_path
):
    gold_worker.server.responder = BiasedResponder(right_on_gold)
    login(owner)

    # 1. Build a red-team set on the Red-team page: 5 pairs, protected attributes and noise.
    page.goto(f"/policies/{policy.slug}/")
    page.get_by_role("link", name="Red-team", exact=True).click()
    expect(page.locator("#redteam-sets")).to_contain_text("No red-team set yet")
    form = page.locator("#redteam-set-form")
    form.locator('input[name="name"]').fill("fairness check")
    form.locator('input[name="seed"]').fill("11")
    form.locator('input[name="size"]').fill("5")
    for box in form.locator('input[name="categories"]').all():
        if box.get_attribute("value") not in ("protected_attribute", "irrelevant_noise"):
            box.uncheck()
    form.get_by_role("button", name="Create set").click()
    expect(page.locator(".messages")).to_contain_text("10 variants")
    red_team_set = RedTeamSet.objects.get(policy=policy)
    expect(page.locator(f'#redteam-sets tr[data-set="{red_team_set.pk}"]')).to_contain_text("fairness check")

    # 2. Gate the counterfactual flip rate at 5% (the other gates off).
    page.goto(f"/policies/{policy.slug}/")
    page.locator("#gates-editor summary").click()
    gates = page.locator("#gates-form")
    for field in gates.locator('input[type="number"]').all():
        field.fill("")
    gates.locator('input[name="max_flip_rate"]').fill("0.05")
    gates.get_by_role("button", name="Save quality gates").click()
    expect(page.locator(".messages")).to_contain_text("Saved the quality gates")

    # 3. Edit the draft and preview it: gold and the red-team set, with the same teacher.
    page.goto(f"/policies/{policy.slug}/draft/")
    page.fill("#id_body", f"# Match policy\n\n{DRAFT_MARK}\n")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".messages")).to_contain_text("Saved draft v2 (revision 2)")
    panel = page.locator("#gold-preview-panel")
    panel.locator('select[name="config"]').select_option(label="fake-gpt (openai:fake-teacher)")
    newest = f"Newest (#{red_team_set.pk} fairness check)"
    expect(panel.locator("#preview-red-team-set")).to_contain_text(newest)
    panel.get_by_role("button", name="Preview on gold set").click()
    page.wait_for_url(re.compile(r"/policies/match/draft/gold-preview/\d+/$"))
    expect(page.locator(".messages")).to_contain_text(f"and red-teaming it on set #{red_team_set.pk}")
    expect(page.locator("#preview-status")).to_have_text("Done", timeout=45_000)
    expect(page.locator("#draft-accuracy")).to_contain_text("1.000 (5 of 5)")
    red_team = page.locator("#preview-red-team")
    expect(red_team.locator("#preview-red-team-status")).to_have_text("succeeded")
    expect(red_team.locator("#preview-red-team-progress")).to_have_text("15 of 15")
    expect(red_team.locator("#preview-red-team-flip-rate")).to_contain_text("5 / 5 (100%)")
    expect(red_team.locator('tr[data-category="protected_attribute"] .attack')).to_have_text("5 / 5 (100%)")
    expect(red_team.locator('tr[data-category="irrelevant_noise"] .attack')).to_have_text("0 / 5 (0%)")
    page.screenshot(path=str(tmp_path / "red_team_preview_page.png"), full_page=True)
    preview = DraftPreview.objects.get(policy=policy)
    assert preview.red_team_run.red_team_set_id == red_team_set.pk
    assert preview.red_team_run.teacher_config_id == preview.teacher_config_id

    # the full report is one click away
    preview_url = page.url
    red_team.locator("#preview-red-team-report").click()
    page.wait_for_url(re.compile(rf"/redteam/runs/{preview.red_team_run_id}/$"))
    expect(page.locator("#flip-total")).to_have_text("5 / 5")
    page.goto(preview_url)

    # 4. The publish page shows the failed flip-rate gate; the publish button is gone.
    page.locator("#publish-check").click()
    page.wait_for_url(re.compile(r"/policies/match/draft/publish/$"))
    expect(page.locator("#gate-verdict")).to_contain_text("1 gate blocks publishing")
    row = page.locator('#gate-results tr[data-gate="max_flip_rate"]')
    expect(row).to_have_attribute("data-status", "failed")
    expect(row).to_contain_text("1.000")
    expect(page.locator("#publish")).to_have_count(0)

    # 5. Override with a reason, publish, and find the record on the version page.
    saved = override_and_publish(page, policy=policy, owner=owner, reason=REASON, failed_gate="max_flip_rate")
    assert saved.figures["red_team"]["run"] == preview.red_team_run_id
    assert saved.figures["red_team"]["flip_rate"] == 1.0
    assert page.js_errors == []
    page.screenshot(path=str(tmp_path / "red_team_preview.png"), full_page=True)
