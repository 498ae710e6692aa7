"""A policy owner uploads custom red-team variants on the Red-team page: a file with one bad line is refused with
the line and field and creates nothing; the corrected file creates the set; a red-team run of v1 on it (a real
Celery worker, a fake OpenAI teacher that only knows the gold members) shows the custom category in the report,
with the uploaded variant the teacher got wrong as the example and the one it held not counted."""

import json
import re

import pytest
from playwright.sync_api import expect

from labeling.models import RedTeamRun, RedTeamSet
from tests.labeling.gold_helpers import pair_of

from .conftest import GOLD

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

OBVIOUS_FIT = {
    "member": {"member_id": "c1", "headline": "Senior data engineer", "skills": ["Python", "SQL"],
               "summary": "Builds pipelines for a living."},
    "job": {"job_id": "cj1", "title": "Data engineer", "description": "Pipelines"},
    "expected_label": "strong_match",
    "name": "obvious fit",
}  # fmt: skip
HOBBY_NOISE = {
    "member": {"member_id": "m1", "headline": "Member m1", "summary": "Builds pipelines. Plays chess on weekends."},
    "job": {"job_id": "j1", "title": "Data engineer", "description": "Pipelines"},
    "must_match": {"member_id": "m1", "job_id": "j1"},
    "name": "hobby noise",
}


def knows_only_gold(request, call_number):
    """The gold members' labels (a variant keeps its member's id), no_match for anyone it does not know."""
    member, _ = pair_of(request)
    label = GOLD.get(member, "no_match")
    return {"label": label, "rationale": f"{label} for {member}.", "cited_rules": ["R1"]}


def _jsonl(*rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _upload(page, name: str, content: bytes):
    form = page.locator("#redteam-custom-form")
    form.locator('input[name="name"]').fill("custom check")
    form.locator('input[name="file"]').set_input_files({"name": name, "mimeType": "application/json",
                                                        "buffer": content})  # fmt: skip
    form.get_by_role("button", name="Upload custom set").click()


def test_owner_uploads_a_custom_set_after_a_bad_line_runs_it_and_sees_the_custom_category(
    page, login, policy, owner, gold_worker, tmp_path
):
    gold_worker.server.responder = knows_only_gold
    login(owner)
    page.goto(f"/policies/{policy.slug}/")
    page.get_by_role("link", name="Red-team", exact=True).click()

    # 1. A file with one bad line: the line and the field are named, nothing is created.
    unmatched = {key: value for key, value in HOBBY_NOISE.items() if key != "must_match"}
    _upload(page, "custom-bad.jsonl", _jsonl(OBVIOUS_FIT, {**unmatched, "expected_label": "maybe"}))
    error = page.locator("#custom-error")
    expect(error).to_contain_text("custom-bad.jsonl: 1 bad line; nothing was created.")
    row = error.locator("#custom-errors tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(0)).to_have_text("2")
    expect(row.locator("td").nth(1)).to_have_text("expected_label")
    expect(row.locator("td").nth(2)).to_contain_text("'maybe' is not a label of this policy")
    assert not RedTeamSet.objects.exists()

    # 2. The corrected file creates the set.
    _upload(page, "custom.jsonl", _jsonl(OBVIOUS_FIT, HOBBY_NOISE))
    expect(page.locator(".messages")).to_contain_text("2 custom variants")
    red_team_set = RedTeamSet.objects.get(policy=policy)
    assert red_team_set.categories == ["custom"]
    expect(page.locator(f'#redteam-sets tr[data-set="{red_team_set.pk}"]')).to_contain_text("custom check")

    # 3. Plan and start a run of v1 on it with the fake teacher; the worker labels it.
    plan_form = page.locator("#redteam-plan-form")
    plan_form.locator('select[name="set"]').select_option(value=str(red_team_set.pk))
    plan_form.locator('select[name="version"]').select_option(label="v1 (published)")
    plan_form.locator('select[name="config"]').select_option(label="fake-gpt")
    plan_form.get_by_role("button", name="Plan").click()
    expect(page.locator("#plan-requests")).to_have_text("3")  # the must_match pair's clean label + 2 variants
    page.get_by_role("button", name="Start red-team run").click()
    page.wait_for_url(re.compile(r"/redteam/runs/\d+/$"))
    expect(page.locator("#redteam-status")).to_have_text("succeeded", timeout=30_000)

    # 4. The report has the custom category: the obvious fit was labelled no_match, the hobby held.
    custom = page.locator('#redteam-categories tr[data-category="custom"]')
    expect(custom.locator("td").first).to_have_text("custom")
    expect(custom.locator(".attack")).to_have_text("1 / 2 (50%)")
    examples = page.locator('table.redteam-examples[data-category="custom"] tbody tr')
    expect(examples).to_have_count(1)
    expect(examples.first).to_contain_text("c1 × cj1")
    expect(examples.first).to_contain_text("(no original)")
    expect(examples.first).to_contain_text("label no_match, expected strong_match")
    run = RedTeamRun.objects.get()
    assert run.status == "succeeded" and run.red_team_set_id == red_team_set.pk
    assert len(gold_worker.server.chat_requests()) == 3
    assert page.js_errors == []
    page.screenshot(path=str(tmp_path / "red_team_custom.png"), full_page=True)
