"""Browser journeys: Playwright's sync API driving Debian's headless Chromium against pytest-django's live server.

While Playwright's sync API is running, an asyncio event loop is running in the test thread. Two consequences:

* Django's ORM raises ``SynchronousOnlyOperation`` there, so ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set while the browser
  is up (only then): the test thread shares no connection with async code.
* Django keeps database connections per *context* instead of per thread while a loop runs, so ORM calls in a test
  body use a second connection to the test database, not the one pytest-django set up (which is fine for these
  transactional tests). Playwright is therefore started per test, after the database fixtures and stopped before
  their teardown (the flush and the serialized-rollback restore need the thread's own connection), and that
  second connection is closed before the loop stops.
"""

import io
import os
import re
from dataclasses import dataclass

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from labeling.models import GateRecord, GoldLabel, Pair, TeacherConfig
from labeling.services import import_file
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(transactional_db):
    executable = os.environ.get("PLAYWRIGHT_CHROMIUM", "/usr/bin/chromium")
    if not os.access(executable, os.X_OK):
        pytest.fail(f"No Chromium at {executable}: install Debian's chromium or set PLAYWRIGHT_CHROMIUM.")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
                connections.close_all()  # the connections opened while the loop ran


@pytest.fixture
def page(live_server, browser):
    """A page on the live server; JavaScript errors are collected in ``page.js_errors``."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def login(page):
    """Log in through the login form, as a person would."""

    def log_in(user, password: str | None = None):
        page.goto("/login/")
        page.fill("#id_username", user.get_username())
        page.fill("#id_password", password or "pw-" + user.get_username())
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login/" not in url)
        return page

    return log_in


# --- the gold set and a worker with a fake teacher: what the quality-gate and red-team journeys share ----------
#: The gold set: five members for one job; m1–m3 strong_match, m4–m5 no_match.
MEMBERS = ["m1", "m2", "m3", "m4", "m5"]
GOLD = {member: "strong_match" if member in ("m1", "m2", "m3") else "no_match" for member in MEMBERS}


@dataclass
class GoldWorker:
    server: FakeOpenAI  # set ``server.responder`` to make the teacher behave
    worker: Worker
    config: TeacherConfig  # "fake-gpt", at the fake server


def _import_gold_set(policy) -> None:
    for kind, text in [
        ("members", "member_id,headline,summary\n" + "".join(f"{m},Member {m},Builds pipelines\n" for m in MEMBERS)),
        ("jobs", "job_id,title,description\nj1,Data engineer,Pipelines\n"),
        ("pairs", "member_id,job_id\n" + "".join(f"{m},j1\n" for m in MEMBERS)),
    ]:
        assert import_file(kind=kind, stream=io.BytesIO(text.encode()), name=f"{kind}.csv").ok
    for member, label in GOLD.items():
        GoldLabel.objects.create(policy=policy, pair=Pair.objects.get(member__external_id=member), label=label)


@pytest.fixture
def gold_worker(policy, tmp_path, monkeypatch):
    """The policy's gold set (``GOLD``, imported as pairs), a fake OpenAI server, the teacher config ``fake-gpt``
    at it (K = 1, one request at a time) and a real Celery worker on every queue; stopped after the test. Ask for
    it after ``page`` (or ``login``), so the worker stops before the browser."""
    monkeypatch.setenv("OPENAI_API_KEY", "test")  # the web process checks the config can be used
    _import_gold_set(policy)
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"})
    with FakeOpenAI(latency=0.02) as server:
        config = TeacherConfig.objects.create(
            name="fake-gpt", provider="openai", model="fake-teacher", base_url=server.base_url, samples_per_pair=1,
            temperature=0, concurrency=1, request_timeout=10,
        )  # fmt: skip
        try:
            worker.start()
            yield GoldWorker(server=server, worker=worker, config=config)
        finally:
            worker.stop()


def override_and_publish(page, *, policy, owner, reason: str, failed_gate: str) -> GateRecord:
    """On the publish page of draft v2 with a failing gate: override it with ``reason``, publish, and check the
    version page's gate record (who overrode, why, ``failed_gate`` failed). The stored record."""
    page.fill("#id_override_reason", reason)
    page.get_by_role("button", name="Override the failing gates and publish v2").click()
    page.wait_for_url(re.compile(rf"/policies/{policy.slug}/v2/$"))
    expect(page.locator(".messages")).to_contain_text("Published v2")
    record = page.locator("#gate-record")
    expect(record).to_contain_text("Published with failing gates")
    expect(record).to_contain_text(f"Override by {owner.get_username()}")
    expect(record.locator(".override-reason")).to_have_text(reason)
    expect(record.locator(f'tr[data-gate="{failed_gate}"]')).to_have_attribute("data-status", "failed")
    saved = GateRecord.objects.get(version__policy=policy, version__number=2)
    assert (saved.override_reason, saved.overridden_by_id, saved.passed) == (reason, owner.pk, False)
    return saved
