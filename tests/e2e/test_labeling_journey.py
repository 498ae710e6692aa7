"""An ml_engineer uploads members, jobs and pairs, plans a labeling run, starts it, watches it progress and sees
the candidates split into auto-accepted and needs-review with their reasons.

Real parts only: the browser drives the live server, a real Celery worker subprocess (Redis broker, the PostgreSQL
test database) imports the uploads and runs the chunks, and the teacher is the local fake OpenAI server reached
through the real openai client. The live server saves uploads under MEDIA_ROOT and the worker reads them there, so
both point at the same temporary folder.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from labeling.models import LabelingRun, TeacherConfig
from policyhub import roles
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SCREENSHOT = Path("/tmp/run_page.png")
K = 3

MEMBERS_CSV = """member_id,headline,skills,seniority,location,summary
m1,Data engineer,Python;SQL;Airflow,senior,Berlin,Builds pipelines
m2,Registered nurse,Triage;ICU,mid,Paris,Night shifts on a ward
m3,Backend developer,Go;PostgreSQL,mid,Lisbon,Builds APIs
m4,Analyst,SQL;Excel,junior,Madrid,Reports and dashboards
m5,Designer,Figma;Illustration,senior,Vienna,Product design
m6,Data scientist,Python;Statistics,staff,Oslo,Forecasting models
"""
JOBS_JSONL = (
    '{"job_id": "j1", "title": "Senior data engineer", "description": "Build pipelines in Python.", '
    '"required_skills": ["Python", "SQL"], "seniority": "senior", "location": "Berlin"}\n'
    '{"job_id": "j2", "title": "ICU nurse", "description": "Intensive care unit.", "required_skills": "ICU;Triage", '
    '"seniority": "mid", "location": "Paris"}\n'
)
MEMBERS = ["m1", "m2", "m3", "m4", "m5", "m6"]
JOBS = ["j1", "j2"]
PAIRS_CSV = "member_id,job_id\n" + "".join(f"{m},{j}\n" for m in MEMBERS for j in JOBS)
PAIRS = len(MEMBERS) * len(JOBS)

# How the fake teacher answers, by member: its K samples disagree (2 strong_match, 1 no_match), or its rationale
# claims a seniority level neither side has (the hallucination check fails), or it answers plainly.
DISAGREEING = {"m2", "m5"}
HALLUCINATING = {"m4"}
MEMBER_ID = re.compile(r'"member_id": "([^"]+)"')


def responder(request: dict, call_number: int) -> dict:
    """Deterministic per pair: ``call_number`` counts earlier calls with the same messages (= the same pair)."""
    member = MEMBER_ID.search(request["messages"][-1]["content"]).group(1)
    if member in DISAGREEING and call_number % K == K - 1:
        return {"label": "no_match", "rationale": "A must-have is missing from the profile.", "cited_rules": ["R1"]}
    if member in HALLUCINATING:
        return {"label": "partial_match", "rationale": "Has director experience.", "cited_rules": ["R2"]}
    return {"label": "strong_match", "rationale": "The profile fits the posting.", "cited_rules": ["R1"]}


# Reports every #count-done the page shows to the test: htmx swaps #run-progress in place, so one observer sees
# all the updates of one page load (a navigation would replace the document and silence it).
WATCH_PROGRESS = """() => {
    const read = () => { const el = document.querySelector("#count-done"); return el && el.textContent.trim(); };
    let last = read();
    new MutationObserver(() => {
        const value = read();
        if (value !== null && value !== last) { last = value; window.reportDone(value); }
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture
def ml_engineer(make_user):
    return make_user("mila", roles.ML_ENGINEER)


def candidate_row(page, member: str, job: str):
    return (
        page.locator("#candidates tbody tr")
        .filter(has=page.locator("td:nth-child(1)", has_text=f"{member} · "))
        .filter(has=page.locator("td:nth-child(2)", has_text=f"{job} · "))
    )


def upload(page, tmp_path: Path, kind: str, name: str, text: str, created: int) -> None:
    path = tmp_path / "uploads" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    page.goto("/imports/")
    page.select_option("#id_kind", kind)
    page.set_input_files("#id_file", str(path))
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url(re.compile(r"/imports/\d+/$"))
    expect(page.locator(".messages")).to_contain_text(f"{name} is queued for import")
    # The page polls with htmx until the worker has imported the file.
    expect(page.locator("#import-state")).to_have_text("Succeeded", timeout=30_000)
    expect(page.locator("#import-status")).to_contain_text(f"{created} created, 0 already present, of {created} rows")
    expect(page.locator("#import-status")).not_to_have_attribute("hx-get", re.compile(".*"))


def test_engineer_imports_plans_runs_and_reviews_routing(page, login, policy, ml_engineer, settings, tmp_path):
    media = tmp_path / "media"
    settings.MEDIA_ROOT = str(media)  # the live server saves uploads here, the worker reads them from here
    purge_queue()
    worker = Worker(
        tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test", "MEDIA_ROOT": str(media)}
    )
    with FakeOpenAI(latency=0.2) as server:
        server.responder = responder
        TeacherConfig.objects.create(
            name="fake-gpt", provider="openai", model="fake-teacher", base_url=server.base_url,
            samples_per_pair=K, temperature=0.7, concurrency=1, request_timeout=10,
        )  # fmt: skip
        try:
            worker.start()
            login(ml_engineer)

            # 1. Upload members (CSV), jobs (JSONL) and pairs (CSV); the worker imports each.
            upload(page, tmp_path, "members", "members.csv", MEMBERS_CSV, created=len(MEMBERS))
            upload(page, tmp_path, "jobs", "jobs.jsonl", JOBS_JSONL, created=len(JOBS))
            upload(page, tmp_path, "pairs", "pairs.csv", PAIRS_CSV, created=PAIRS)
            page.get_by_role("link", name="Imports", exact=True).click()
            expect(page.locator("main p.muted").first).to_have_text(
                f"{len(MEMBERS)} members · {len(JOBS)} jobs · {PAIRS} pairs"
            )

            # 2. Plan the run: the rendered prompt and the estimate, and not one request to the teacher.
            page.get_by_role("link", name="Runs", exact=True).click()
            page.get_by_role("link", name="New run").click()
            expect(page).to_have_url(re.compile(r"/runs/new/$"))
            page.select_option("#id_version", label="match v1 (published)")
            page.select_option("#id_config", label="fake-gpt (openai:fake-teacher)")
            page.fill("#id_chunk_size", "2")
            page.get_by_role("button", name="Plan (no requests)").click()
            plan = page.locator("#run-plan")
            expect(plan).to_be_visible()
            expect(plan.locator("tr", has_text="Pairs").first.locator("td")).to_have_text(str(PAIRS))
            expect(plan.locator("tr", has_text="Teacher requests").locator("td")).to_have_text(
                f"{PAIRS} (the {K} samples of a pair in one request: the prompt is paid once)"
            )
            expect(plan).to_contain_text("One request as the teacher will receive it")
            prompts = plan.locator("pre.prompt")
            expect(prompts).to_have_count(2)
            expect(prompts.nth(0)).to_contain_text("Judge from the profile only.")  # the policy's body
            expect(prompts.nth(0)).to_contain_text("R1: Required skills appear in the member's skills.")
            expect(prompts.nth(1)).to_contain_text("<member>")
            expect(prompts.nth(1)).to_contain_text('"member_id": "m1"')
            expect(prompts.nth(1)).to_contain_text("</job>")
            assert server.chat_requests() == []
            assert LabelingRun.objects.count() == 0
            # the form kept the choices, so starting runs what was planned
            expect(page.locator("#id_chunk_size")).to_have_value("2")

            # 3. Start it and watch the counters move in place (htmx polling, no reload).
            page.get_by_role("button", name="Start run").click()
            page.wait_for_url(re.compile(r"/runs/\d+/$"))
            run = LabelingRun.objects.get()
            assert page.url.endswith(f"/runs/{run.pk}/")
            expect(page.locator(".messages")).to_contain_text(f"Run #{run.pk} started on {PAIRS} pairs.")
            live: list[int] = []
            page.expose_function("reportDone", lambda value: live.append(int(value)))
            loads: list[str] = []
            page.on("load", lambda loaded: loads.append(loaded.url))
            page.evaluate(WATCH_PROGRESS)
            expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=60_000)
            expect(page.locator("#count-done")).to_have_text(str(PAIRS * K))
            assert any(0 < value < PAIRS * K for value in live), f"no progress was shown in place: {live}"
            assert live == sorted(live), live
            # The candidate table follows the run in place too (its own htmx poll): no page reload at all.
            assert loads == [], loads
            expect(page.locator("#run-progress")).not_to_have_attribute("hx-get", re.compile(".*"))  # polling stops
            expect(page.locator("#run-candidates")).not_to_have_attribute("hx-get", re.compile(".*"), timeout=10_000)
            expect(page.locator("#count-failed")).to_have_text("0")

            # 4. The routing: plain answers are auto-accepted; disagreeing samples and a hallucinated fact go to review.
            review_pairs = {(m, j) for m in DISAGREEING | HALLUCINATING for j in JOBS}
            expect(page.locator("#count-auto")).to_have_text(str(PAIRS - len(review_pairs)))
            expect(page.locator("#count-review")).to_have_text(str(len(review_pairs)))
            expected_reasons = {
                "self_disagreement": len(DISAGREEING) * len(JOBS),
                "low_confidence": len(DISAGREEING) * len(JOBS),  # 2 of 3 votes: 0.67 < 0.7
                "trust_check_failed": len(HALLUCINATING) * len(JOBS),
                "teacher_disagreement": 0,
                "gold_conflict": 0,
            }
            for reason, count in expected_reasons.items():
                expect(page.locator(f'li[data-reason="{reason}"] .reason-count')).to_have_text(str(count))

            # The needs-review table (the default tab) lists those pairs with their reasons.
            rows = page.locator("#candidates tbody tr")
            expect(rows).to_have_count(len(review_pairs))
            expect(page.locator('#candidates tr[data-routing="needs_review"]')).to_have_count(len(review_pairs))
            for member in sorted(DISAGREEING):
                for job in JOBS:
                    row = candidate_row(page, member, job)
                    expect(row).to_have_count(1)
                    expect(row.locator("td").nth(2)).to_have_text("strong_match")
                    expect(row.locator("td").nth(6)).to_have_text("self_disagreement, low_confidence")
            for member in sorted(HALLUCINATING):
                for job in JOBS:
                    row = candidate_row(page, member, job)
                    expect(row).to_have_count(1)
                    expect(row.locator("td").nth(2)).to_have_text("partial_match")
                    expect(row.locator("td").nth(6)).to_have_text("trust_check_failed")

            # A reason's link filters the table to it.
            page.locator('li[data-reason="trust_check_failed"] a').click()
            expect(page.locator("#candidates tbody tr")).to_have_count(len(HALLUCINATING) * len(JOBS))
            expect(page.locator("#candidates tbody")).not_to_contain_text("self_disagreement")

            # The auto-accepted tab: the plainly answered pairs, no reasons.
            page.get_by_role("link", name="Auto-accepted", exact=True).click()
            expect(page).to_have_url(re.compile(r"\?routing=auto_accepted$"))
            auto_rows = page.locator("#candidates tbody tr")
            expect(auto_rows).to_have_count(PAIRS - len(review_pairs))
            expect(page.locator('#candidates tr[data-routing="auto_accepted"]')).to_have_count(
                PAIRS - len(review_pairs)
            )
            for index in range(PAIRS - len(review_pairs)):
                expect(auto_rows.nth(index).locator("td").nth(2)).to_have_text("strong_match")
                expect(auto_rows.nth(index).locator("td").nth(6)).to_have_text("")
            auto_members = {text.split(" · ")[0] for text in auto_rows.locator("td:first-child").all_text_contents()}
            assert auto_members == set(MEMBERS) - DISAGREEING - HALLUCINATING

            # Back on the needs-review tab for the record.
            page.get_by_role("link", name="Needs review", exact=True).click()
            expect(page.locator("#candidates tbody tr")).to_have_count(len(review_pairs))
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert page.js_errors == []
        finally:
            worker.stop()

    # Every sample was asked exactly once: K per pair, nothing more.
    assert (len(server.chat_requests()), server.answers_asked()) == (PAIRS, PAIRS * K)  # one request per pair, n = K
    run.refresh_from_db()
    assert (run.status, run.samples_done, run.samples_failed) == ("succeeded", PAIRS * K, 0)
