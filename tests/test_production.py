"""`bin/serve`, the production command: gunicorn with DEBUG off and WhiteNoise for static files, on this session's
test database, as it runs behind a TLS-terminating proxy (which sends ``X-Forwarded-Proto: https``)."""

import gzip
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.celery_worker import broker_url, worker_database_url

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 90
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, process: subprocess.Popen, log_path: Path, port: int):
        self.process, self.log_path, self.port = process, log_path, port
        self.cookies: dict[str, str] = {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, path: str, *, via_proxy: bool = True, method: str = "GET", form: dict | None = None,
                headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:  # fmt: skip
        """One request; ``via_proxy`` adds the header the TLS proxy sets. Cookies are kept by hand: they are
        ``Secure``, which a client talking plain HTTP to the server itself would never send back."""
        headers = dict(headers or {})
        if via_proxy:
            headers["X-Forwarded-Proto"] = "https"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.update({name: morsel.value for name, morsel in SimpleCookie(header).items()})
        return response.status, response.headers, content


@pytest.fixture(scope="module")
def served(django_db_setup, tmp_path_factory):
    """`bin/serve` in its own process group, shared by this module's tests, stopped with SIGTERM (as a service
    manager does) after the last one."""
    tmp_path = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {name: os.environ[name] for name in KEPT_ENV if name in os.environ}
    env.update(
        DEBUG="1",  # bin/serve turns it off whatever the environment says
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=worker_database_url(),
        CELERY_BROKER_URL=broker_url(),
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto:https",
        POLICYHUB_VAR_DIR=str(tmp_path / "var"),
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            ["bin/serve"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = Server(process, log_path, port)
    try:
        _wait_until_up(server)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def server(served):
    """The shared server, with no cookies from an earlier test."""
    served.cookies.clear()
    return served


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"bin/serve exited with status {server.process.returncode}:\n{server.log()}")
        try:
            status, _, body = server.request("/healthz", via_proxy=False)
            if status == 200:
                return
            last = f"{status} {body!r}"
        except OSError as error:
            last = repr(error)
        time.sleep(0.5)
    pytest.fail(f"/healthz did not answer 200 within {START_SECONDS} s (last: {last}):\n{server.log()}")


def test_healthz_answers_load_balancers_over_plain_http_with_the_status_only(server):
    status, headers, body = server.request("/healthz", via_proxy=False)

    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    assert headers["Server"].startswith("gunicorn")


def test_a_page_over_plain_http_is_redirected_to_https(server):
    status, headers, _ = server.request("/login/", via_proxy=False)

    assert status == 301
    assert headers["Location"] == f"https://127.0.0.1:{server.port}/login/"


def test_the_login_page_comes_with_hsts_a_secure_cookie_and_hashed_static_files(server):
    status, headers, body = server.request("/login/")

    assert status == 200, body
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    csrf_cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("csrftoken="))
    assert "Secure" in csrf_cookie
    page = body.decode()
    assert re.search(r'href="/static/app\.[0-9a-f]{12}\.css"', page), page


def test_static_files_are_served_by_whitenoise_cached_for_ever_and_compressed(server):
    _, _, body = server.request("/login/")
    css_url = re.search(r'href="(/static/app\.[0-9a-f]{12}\.css)"', body.decode()).group(1)
    source = (ROOT / "static" / "app.css").read_bytes()

    status, headers, css = server.request(css_url)
    gz_status, gz_headers, gz_css = server.request(css_url, headers={"Accept-Encoding": "gzip"})

    assert status == 200
    assert css == source
    assert headers["Cache-Control"] == "max-age=315360000, public, immutable"
    assert headers["Content-Type"].startswith("text/css")
    assert gz_status == 200 and gz_headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gz_css) == source


def test_the_vendored_chart_libraries_are_served_under_hashed_names(server):
    """charts.js loads Vega from the URLs base.html gives it: in production, WhiteNoise's hashed copies."""
    _, _, body = server.request("/login/")
    page = body.decode()
    assert re.search(r'<script src="/static/charts\.[0-9a-f]{12}\.js" defer', page), page
    for name in ("vega-6.4.0.min", "vega-interpreter-2.3.2", "vega-lite-6.5.0.min", "vega-embed-7.3.0.min"):
        url = re.search(rf'"(/static/vendor/vega/{name}\.[0-9a-f]{{12}}\.js)"', page).group(1)
        status, headers, script = server.request(url)
        assert status == 200 and headers["Content-Type"].startswith("text/javascript"), (url, status)
        assert script == (ROOT / "static" / "vendor" / "vega" / f"{name}.js").read_bytes()


def test_pages_come_with_a_content_security_policy_without_inline_or_eval_scripts(server):
    _, headers, _ = server.request("/login/")
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'self'"


def test_a_user_logs_in_and_sees_a_page_and_errors_show_no_debug_details(server, transactional_db, make_user):
    make_user("olivia", "policy_owner")
    _, _, login_page = server.request("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.decode()).group(1)
    origin = f"https://127.0.0.1:{server.port}"

    status, headers, body = server.request(
        "/login/",
        method="POST",
        form={"username": "olivia", "password": "pw-olivia", "csrfmiddlewaretoken": token},
        headers={"Origin": origin, "Referer": origin + "/login/"},
    )

    assert status == 302, body
    session_cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("sessionid="))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie
    status, _, body = server.request("/")
    assert status == 200
    assert "olivia" in body.decode()

    status, _, body = server.request("/no-such-page/")
    assert status == 404
    assert b"URLconf" not in body and b"Traceback" not in body  # DEBUG is off, whatever the environment said


def test_bin_serve_without_a_secret_key_refuses_to_start(tmp_path):
    env = {name: os.environ[name] for name in KEPT_ENV if name in os.environ}
    env.update(ALLOWED_HOSTS="127.0.0.1", POLICYHUB_VAR_DIR=str(tmp_path / "var"), BIND=f"127.0.0.1:{_free_port()}")

    result = subprocess.run(["bin/serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr
    assert "Listening at" not in result.stdout + result.stderr
