"""A policy owner marks a run's human-approved items as gold, edits the draft, previews it on the gold set and
watches the flips appear while a real Celery worker labels the gold pairs with the fake OpenAI teacher."""

import io
import re

import pytest
from playwright.sync_api import expect

from labeling.models import Candidate, GoldLabel, TeacherConfig
from labeling.services import import_file, labeling_run_create, review_claim_next, review_submit
from policyhub import roles
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI
from tests.labeling.gold_helpers import DRAFT_MARK, pair_of

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MEMBERS = ["m1", "m2", "m3", "m4", "m5", "m6"]
CHANGED = {"m2", "m5"}  # humans said no_match; the published version says strong_match, the edited draft no_match

WATCH_PROGRESS = """() => {
    const read = () => { const el = document.querySelector("#draft-progress"); return el && el.textContent.trim(); };
    window.progressSeen = [read()];
    new MutationObserver(() => {
        const value = read();
        if (value && value !== window.progressSeen[window.progressSeen.length - 1]) window.progressSeen.push(value);
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def responder(request, call_number):
    member, job = pair_of(request)
    is_draft = DRAFT_MARK in request["messages"][0]["content"]
    label = "no_match" if is_draft and member in CHANGED else "strong_match"
    rationale = f"{'Draft' if is_draft else 'v1'}: {label} for {member}."
    return {"label": label, "rationale": rationale, "cited_rules": ["R1"]}


def reviewed_run(policy, annotator):
    """A labeling run whose 12 items an annotator reviewed (through the review services)."""
    for kind, text in [
        ("members", "member_id,headline\n" + "".join(f"{m},Member {m}\n" for m in MEMBERS)),
        ("jobs", "job_id,title,description\nj1,Data engineer,Pipelines\nj2,ICU nurse,Care\n"),
        ("pairs", "member_id,job_id\n" + "".join(f"{m},j1\n{m},j2\n" for m in MEMBERS)),
    ]:
        assert import_file(kind=kind, stream=io.BytesIO(text.encode()), name=f"{kind}.csv").ok
    baseline = TeacherConfig.objects.create(name="baseline", provider="heuristic")
    run = labeling_run_create(version=policy.versions.get(number=1), config=baseline, selection={"all": True})
    Candidate.objects.filter(run=run).update(
        status="labeled", label="strong_match", routing="needs_review", review_state="pending", reviews_needed=1
    )
    while (item := review_claim_next(user=annotator, run_id=run.pk)) is not None:
        label = "no_match" if item.pair.member.external_id in CHANGED else "strong_match"
        review_submit(user=annotator, candidate_id=item.pk, label=label)
    return run


def test_owner_marks_gold_edits_the_draft_and_watches_the_preview(
    page, login, policy, owner, make_user, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    run = reviewed_run(policy, make_user("ana", roles.ANNOTATOR))
    purge_queue()  # the run's own chunk tasks: this journey only needs its reviewed items
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"})
    with FakeOpenAI(latency=0.15) as server:
        server.responder = responder
        TeacherConfig.objects.create(
            name="fake-gpt", provider="openai", model="fake-teacher", base_url=server.base_url, samples_per_pair=1,
            temperature=0, concurrency=1, request_timeout=10,
        )  # fmt: skip
        try:
            worker.start()
            login(owner)

            # 1. From the policy to its gold set, then the run's reviewed items: mark them all as gold.
            page.goto(f"/policies/{policy.slug}/")
            page.get_by_role("link", name="Gold set", exact=True).click()
            expect(page.locator("#gold-total")).to_have_text("0")
            page.locator(f'#gold-runs tr[data-run="{run.pk}"]').get_by_role("link").click()
            expect(page.locator("#gold-items tbody tr")).to_have_count(12)
            page.get_by_role("button", name="Mark all human-approved items of this run as gold").click()
            expect(page.locator(".messages")).to_contain_text(f"Run #{run.pk}: 12 added to the gold set")
            expect(page.locator("#gold-items .badge.added")).to_have_count(12)
            assert GoldLabel.objects.filter(policy=policy).count() == 12
            page.get_by_role("link", name=re.compile("Gold set of")).click()
            expect(page.locator('#gold-counts [data-label="no_match"] .count')).to_have_text("4")
            expect(page.locator('#gold-counts [data-label="strong_match"] .count')).to_have_text("8")

            # 2. Edit the draft and save it.
            page.goto(f"/policies/{policy.slug}/draft/")
            page.fill("#id_body", f"# Match policy\n\n{DRAFT_MARK}\n")
            page.get_by_role("button", name="Save draft").click()
            expect(page.locator(".messages")).to_contain_text("Saved draft v2 (revision 2)")

            # 3. Preview it on the gold set with the fake teacher; the page fills in while the worker labels.
            panel = page.locator("#gold-preview-panel")
            expect(panel).to_contain_text("Labels the 12 gold pairs under the saved draft (revision 2)")
            panel.locator('select[name="config"]').select_option(label="fake-gpt (openai:fake-teacher)")
            panel.get_by_role("button", name="Preview on gold set").click()
            page.wait_for_url(re.compile(r"/policies/match/draft/gold-preview/\d+/$"))
            page.evaluate(WATCH_PROGRESS)
            expect(page.locator("#preview-status")).to_have_text("Done", timeout=30_000)

            seen = page.evaluate("window.progressSeen")
            assert seen[-1] == "12 of 12" and len(seen) >= 2, seen  # intermediate progress was shown
            expect(page.locator("#flips tbody tr")).to_have_count(4)
            flip = page.locator('#flips tr[data-pair="m2|j1"]')
            expect(flip.locator("td").nth(2)).to_have_text("strong_match")
            expect(flip.locator("td").nth(3)).to_have_text("no_match")
            expect(flip.locator("td").nth(4)).to_have_text("no_match")
            expect(flip).to_contain_text("Draft: no_match for m2.")
            expect(page.locator("#draft-accuracy")).to_contain_text("1.000 (12 of 12)")
            expect(page.locator("#published-accuracy")).to_contain_text("0.667 (8 of 12)")
            expect(page.locator("#stale-notice")).to_have_count(0)
            expect(page.locator("#preview-progress")).not_to_have_attribute("hx-trigger", re.compile(".*"))
            assert page.js_errors == []
            page.screenshot(path=str(tmp_path / "gold_preview.png"), full_page=True)
        finally:
            worker.stop()
