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

import os

import pytest
from django.db import connections
from playwright.sync_api import sync_playwright

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
