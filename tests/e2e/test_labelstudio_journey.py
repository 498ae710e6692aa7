"""An annotator links their Label Studio account by pasting their own token on their Label Studio page, an ML
engineer pushes a run's needs-review items to a real Label Studio from the run page, the annotator and someone
nobody linked annotate them there, and a policy owner pulls the annotations back and reads the report on the run
page."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from labeling.models import LabelStudioProject
from policyhub import roles
from tests.labeling.conftest import published, review_items  # noqa: F401 - the labeling fixtures used here

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.labelstudio,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SCREENSHOT = Path("/tmp/labelstudio_run_page.png")


def test_push_annotate_in_label_studio_and_pull_from_the_run_page(labelstudio, review_items, page, login, make_user):  # noqa: F811
    run = review_items(2)
    first, second = run.candidates.order_by("pk")
    engineer, owner = make_user("emma", roles.ML_ENGINEER), make_user("odette", roles.POLICY_OWNER)
    annotator = make_user("arjun", roles.ANNOTATOR)

    login(annotator)
    page.goto("/")
    page.get_by_role("link", name="Label Studio", exact=True).click()
    page.get_by_label("Label Studio access token").fill(labelstudio.annotator_token(annotator.email))
    page.get_by_role("button", name="Link account").click()
    linked_id = labelstudio.user_id(annotator.email)
    expect(page.locator(".messages")).to_contain_text(f"Linked to Label Studio user #{linked_id} ({annotator.email})")
    page.get_by_role("button", name="Log out").click()

    login(engineer)
    page.goto(f"/runs/{run.pk}/")
    page.get_by_role("button", name="Push to Label Studio").click()
    expect(page.locator(".messages")).to_contain_text(re.compile(r"Created Label Studio project #\d+: 2 new tasks"))
    link = LabelStudioProject.objects.get(run=run)
    expect(page.locator("#labelstudio a", has_text=f"#{link.project_id}")).to_have_attribute("href", link.url)
    page.get_by_role("button", name="Log out").click()

    labelstudio.annotate(annotator.email, labelstudio.task_id(link.project_id, first.pk), "no_match", "Wrong city.")
    labelstudio.annotate("stranger@example.com", labelstudio.task_id(link.project_id, second.pk), "strong_match")

    login(owner)
    page.goto(f"/runs/{run.pk}/")
    page.get_by_role("button", name="Pull annotations").click()
    expect(page.locator(".messages")).to_contain_text("1 applied, 0 already imported, 0 skipped")
    report = page.locator("#labelstudio-report")
    expect(report).to_contain_text("Annotations by Label Studio users not linked to PolicyHub")
    stranger = report.locator("#labelstudio-unlinked tbody tr")
    expect(stranger).to_have_count(1)
    expect(stranger).to_contain_text(f"#{labelstudio.user_id('stranger@example.com')}")
    expect(stranger).to_contain_text("stranger@example.com")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    first.refresh_from_db()
    assert (first.review_state, first.approved_label) == ("done", "no_match")
    assert page.js_errors == []
