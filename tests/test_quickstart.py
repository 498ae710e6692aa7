"""The README's first command, `bin/run`, on the embedded default: it serves the demo, and Ctrl-C stops everything.

`bin/run` runs as a subprocess in its own process group with no DATABASE_URL / CELERY_BROKER_URL (SQLite and the
filesystem broker under a temporary POLICYHUB_VAR_DIR) on a free port, as a person would start it in a terminal.
"""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 120
STOP_SECONDS = 20
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHON", "USER", "LOGNAME")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class App:
    def __init__(self, process: subprocess.Popen, log_path: Path, port: int):
        self.process = process
        self.log_path = log_path
        self.pgid = process.pid  # start_new_session: bin/run leads its own process group
        self.base = f"http://127.0.0.1:{port}"
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def fail(self, message: str):
        pytest.fail(f"{message}\n----- bin/run output -----\n{self.log()}")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def post(self, path: str, data: dict) -> tuple[int, str, str]:
        request = urllib.request.Request(self.base + path, data=urllib.parse.urlencode(data).encode(), method="POST")
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.geturl(), error.read().decode()


@pytest.fixture
def app(tmp_path):
    """`bin/run` in its own session (process group); killed at teardown if the test did not stop it."""
    port = _free_port()
    env = {name: os.environ[name] for name in KEPT_ENV if name in os.environ}
    env.update(POLICYHUB_VAR_DIR=str(tmp_path / "var"), PORT=str(port), PYTHONUNBUFFERED="1")
    log_path = tmp_path / "run.log"
    # A terminal delivers Ctrl-C to a shell whose SIGINT is not ignored. If this test process ignores SIGINT (e.g.
    # started in the background), the child would inherit that; a handled signal is reset to default on exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                ["bin/run"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    app = App(process, log_path, port)
    try:
        yield app
    finally:
        if _group_alive(app.pgid):
            os.killpg(app.pgid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait_healthy(app: App) -> dict:
    deadline = time.monotonic() + START_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            app.fail(f"bin/run exited with status {app.process.returncode} before serving.")
        try:
            status, body = app.get("/healthz")
            if status == 200:
                return json.loads(body)
            last = f"{status} {body}"
        except OSError as error:
            last = repr(error)
        time.sleep(0.5)
    app.fail(f"/healthz did not answer 200 within {START_SECONDS} s (last: {last}).")


def _owner_password(app: App) -> str:
    match = re.search(r"^\s*owner\s+policy_owner\s+(\S+)\s*$", app.log(), re.MULTILINE)
    if not match:
        app.fail("bin/run did not print the owner's demo credentials.")
    return match.group(1)


def test_bin_run_serves_the_demo_and_ctrl_c_stops_everything(app):
    health = _wait_healthy(app)
    assert health == {"status": "ok"}  # anonymous callers see the status only

    # Log in with the printed demo credentials through the login form (CSRF cookie + token).
    status, login_page = app.get("/login/")
    assert status == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    assert any(cookie.name == "csrftoken" for cookie in app.cookies)
    status, url, page = app.post(
        "/login/", {"username": "owner", "password": _owner_password(app), "csrfmiddlewaretoken": token, "next": ""}
    )
    assert status == 200 and not url.endswith("/login/"), f"login failed: {url}\n{page}"
    assert any(cookie.name == "sessionid" for cookie in app.cookies)

    status, page = app.get("/policies/member-job-match/")
    assert status == 200, page
    assert re.search(r'>v1</a></td>\s*<td><span class="badge published">', page), page
    assert re.search(r'>v2</a></td>\s*<td><span class="badge draft">', page), page
    assert "Edit draft v2" in page

    # The demo's first round of the loop is there on the embedded default too: a red-team run, an annotator's flag.
    status, page = app.get("/policies/member-job-match/redteam/")
    assert status == 200 and "Demo red team" in page, page
    status, page = app.get("/policies/member-job-match/feedback/")
    assert status == 200 and "is a six-week course enough?" in page, page

    # The worker started next to the web server froze v1's prompt when the demo was published.
    deadline = time.monotonic() + 30
    while True:
        status, page = app.get("/policies/member-job-match/v1/prompt/")
        if status == 200 and "Frozen when the version was published" in page:
            break
        if time.monotonic() > deadline:
            app.fail(f"The worker did not freeze v1's prompt within 30 s (status {status}).")
        time.sleep(0.5)

    # Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
    os.killpg(app.pgid, signal.SIGINT)
    try:
        app.process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        app.fail(f"bin/run did not exit within {STOP_SECONDS} s of Ctrl-C.")
    deadline = time.monotonic() + 5  # bin/run has waited for its children; allow the last reaping
    while _group_alive(app.pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(app.pgid):
        leftovers = subprocess.run(["ps", "-o", "pid,stat,cmd", "-g", str(app.pgid)], capture_output=True, text=True)
        app.fail(f"Processes left in bin/run's group after Ctrl-C:\n{leftovers.stdout}")
    assert "Stopping web server and worker" in app.log()
    with pytest.raises(OSError):
        app.get("/healthz")
