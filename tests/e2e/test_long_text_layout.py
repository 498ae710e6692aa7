"""Issue 14: a member–job pair with a 300-character unbroken token and a 19,000-character summary, and long
rationales and notes about it, must not widen any page past a 1280 px window; text cut short for a table shows
all of itself behind its "show all" ``<details>``."""

import io
import re

import pytest
from playwright.sync_api import expect

from labeling.models import Candidate, GoldLabel, ImportBatch, LabelingRun, Review, TeacherConfig, TeacherSample
from labeling.services import draft_preview_start, import_file, labeling_run_create
from labeling.services.feedback import feedback_create
from policyhub import roles
from policyhub.services import policy_version_draft_save
from tests.celery_worker import purge_queue

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WIDTH = 1280
HEADLINE = "H" * 300  # an unbroken token as long as a headline may be
TITLE = "T" * 300
TOKEN = "Z" * 300
SUMMARY = (("Built data pipelines for a decade. " * 600)[:9_000] + TOKEN + " " + "Led teams. " * 1_000)[:19_000]
RATIONALE = "The member fits because " + TOKEN + " and " + "reasons " * 150
NOTE = "Reviewer note: " + TOKEN + " " + "details " * 100


def load_long_pair():
    """Two pairs (mL × jL is the long one, m2 × jL a short one) through the real importer, and a refused import."""
    members = f"member_id,headline,summary\nmL,{HEADLINE},{SUMMARY}\nm2,Short member,Plain\n"
    jobs = f"job_id,title,description\njL,{TITLE},Pipelines {TOKEN} and more\n"
    for kind, text in [("members", members), ("jobs", jobs), ("pairs", "member_id,job_id\nmL,jL\nm2,jL\n")]:
        assert import_file(kind=kind, stream=io.BytesIO(text.encode()), name=f"{kind}.csv").ok
    # an import whose error list quotes a long value
    bad = f"member_id,headline,seniority\nm9,Someone,{'S' * 20}\n"
    import_file(kind="members", stream=io.BytesIO(bad.encode()), name="bad.csv")


def labeled(run, label, rationale=RATIONALE, **fields):
    """The run's candidates as the teacher would leave them: labeled, with one sample carrying ``rationale``."""
    for c in Candidate.objects.filter(run=run).select_related("pair"):
        TeacherSample.objects.create(run=run, pair=c.pair, sample_index=0, label=label, rationale=rationale)
    Candidate.objects.filter(run=run).update(
        status="labeled", label=label, confidence=0.55, label_distribution={label: 0.55}, **fields
    )
    LabelingRun.objects.filter(pk=run.pk).update(status="succeeded")


def fits_the_window(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{page.url} is {width} px wide"


def reveal(page, scope, text):
    """The long text is cut short in ``scope`` and its details element, opened, holds all of it."""
    details = page.locator(f"{scope} details.long-text").filter(has_text=text[:40]).first
    expect(details.locator(".long-text-full")).not_to_be_visible()
    details.locator("summary").click()
    expect(details.locator(".long-text-full")).to_be_visible()
    assert details.locator(".long-text-full").inner_text() == text
    fits_the_window(page)


def test_long_member_and_job_text_fits_every_page(page, login, policy, owner, make_user):
    user = make_user("all", *roles.ALL_ROLES)
    other = make_user("bo", roles.ANNOTATOR)
    load_long_pair()
    baseline = TeacherConfig.objects.create(name="baseline", provider="heuristic")
    run = labeling_run_create(version=policy.versions.get(number=1), config=baseline, selection={"all": True})
    labeled(run, "strong_match", routing="needs_review", reason_low_confidence=True, review_state="pending",
            reviews_needed=1)  # fmt: skip
    long_item = Candidate.objects.get(run=run, pair__member__external_id="mL")
    short_item = Candidate.objects.get(run=run, pair__member__external_id="m2")
    Candidate.objects.filter(pk=long_item.pk).update(trust_ok=False, trust={"tone": {"ok": False, "detail": TOKEN}})
    Review.objects.create(candidate=short_item, reviewer=other, label="no_match", note=NOTE)
    Review.objects.create(candidate=short_item, reviewer=owner, label="strong_match", note="Fine.")
    Candidate.objects.filter(pk=short_item.pk).update(review_state="adjudication", reviews_done=2, reviews_needed=2)
    GoldLabel.objects.create(policy=policy, pair=long_item.pair, label="no_match", note=NOTE)
    preview = draft_preview_start(user=owner, draft=policy.versions.get(number=2), config=baseline)
    purge_queue()  # the preview's chunks: their results are written below
    labeled(preview.draft_run, "no_match")
    labeled(preview.published_run, "strong_match", rationale="Published.")
    page.set_viewport_size({"width": WIDTH, "height": 900})
    login(user)

    # The draft preview's flips table (3,000 px wide before): the long pair's cells are cut short, all reachable.
    page.goto(f"/policies/{policy.slug}/draft/gold-preview/{preview.pk}/")
    expect(page.locator("#preview-status")).to_have_text("Done")
    expect(page.locator("#flips tr[data-pair='mL|jL']")).to_have_count(1)
    fits_the_window(page)
    # the check catches a page that overflows: without the wrapping rule the same page is wider than the window
    page.add_style_tag(content="main, main * { overflow-wrap: normal !important; }")
    assert page.evaluate("document.documentElement.scrollWidth") > WIDTH
    page.reload()
    reveal(page, "#flips", HEADLINE)
    reveal(page, "#flips", TITLE)
    reveal(page, "#flips", RATIONALE)

    # The run page's candidate table and its flagged answers.
    page.goto(f"/runs/{run.pk}/")
    expect(page.locator("#candidates tbody tr")).to_have_count(2)  # both need review
    fits_the_window(page)
    reveal(page, "#candidates", HEADLINE)
    reveal(page, "#candidates", TITLE)
    expect(page.locator(f"#flagged tr[data-candidate='{long_item.pk}']")).to_contain_text(TOKEN)  # the check's detail
    expect(page.locator(f"#flagged tr[data-candidate='{short_item.pk}']")).to_have_count(0)
    reveal(page, "#flagged", RATIONALE)

    # The review page shows the whole summary, wrapped, and the teacher's rationale.
    page.goto(f"/review/?run={run.pk}")
    member = page.locator(".side.member")
    expect(member).to_contain_text(HEADLINE)
    assert member.locator(".text").inner_text() == SUMMARY
    expect(page.locator(".rationale").first).to_have_text(RATIONALE)
    fits_the_window(page)

    # Adjudication: the long note in the reviews table.
    page.goto("/review/adjudication/")
    expect(page.locator(f"#adj-{short_item.pk}")).to_be_visible()
    fits_the_window(page)
    reveal(page, f"#adj-{short_item.pk}", NOTE)

    # Gold pages: the gold set (long title, long note) and the run's items.
    page.goto(f"/policies/{policy.slug}/gold/")
    fits_the_window(page)
    reveal(page, "main", TITLE)
    page.goto(f"/runs/{run.pk}/gold/")
    fits_the_window(page)

    # The policy's feedback inbox: a flag whose note holds the token.
    feedback_create(user=other, candidate_id=short_item.pk, kind="unclear_rule", rule_ids=["R1"], note=NOTE.strip())
    page.goto(f"/policies/{policy.slug}/feedback/")
    fits_the_window(page)
    reveal(page, "#feedback-list", NOTE.strip())  # the service trims the note

    # Agreement, lists, the policy pages and the refused import's error list.
    for url in (f"/runs/{run.pk}/agreement/", "/imports/", "/runs/", f"/policies/{policy.slug}/gold/score/",
                f"/policies/{policy.slug}/", f"/policies/{policy.slug}/v1/"):  # fmt: skip
        page.goto(url)
        fits_the_window(page)
    bad = ImportBatch.objects.get(source_name="bad.csv")
    page.goto(f"/imports/{bad.pk}/")
    expect(page.locator("#import-errors")).to_contain_text("s" * 20)
    fits_the_window(page)
    assert re.search(r"/imports/\d+/$", page.url)

    # Policy text: a draft whose body (prose and a code block) and a rule hold the token.
    draft = policy.versions.get(number=2)
    rules = [*draft.rules, {"id": "R9", "text": "Long rule " + TOKEN}]
    body = f"# Match policy\n\nProse {TOKEN} here.\n\n```\n{TOKEN}\n```\n"
    policy_version_draft_save(
        version=draft, user=owner, revision=draft.revision, body=body, labels=draft.labels, rules=rules
    )
    for path in ("draft/", "v2/", "v2/prompt/", "compare/?from=1&to=2"):
        page.goto(f"/policies/{policy.slug}/{path}")
        expect(page.locator("main")).to_contain_text(TOKEN)
        fits_the_window(page)
    assert page.js_errors == []
