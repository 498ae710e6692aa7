"""The worker checks a run's key and base URL again before it sends anything (settings and DNS may have changed
since the config was saved), re-checks each address at connection time, and follows no redirect. Each refusal is
proven by the fake OpenAI server receiving nothing; the control case by it receiving the key.

The chunks run in-process here, as the worker would run them; test_teacher_endpoint_worker.py runs a real one."""

import http.server
import socket
import threading

import pytest

from labeling import tasks
from labeling.models import LabelingRun, TeacherSample
from labeling.services import labeling_run_batch_submit, labeling_run_create
from labeling.teacher.endpoints import EndpointRefused

UNTIED = {"openai": {"env": "OPENAI_API_KEY", "base_urls": []}}


def start(published, config, **kwargs) -> LabelingRun:
    return labeling_run_create(version=published, config=config, selection={"all": True}, **kwargs)


def test_the_key_goes_where_the_settings_allow(pairs, published, openai_config, fake_openai, process_run):
    run = process_run(start(published, openai_config()))
    assert run.status == "succeeded"
    assert {auth for _, _, auth in fake_openai.received} == {"Bearer test-key"}


def test_a_private_host_no_longer_allowed_fails_the_run_before_anything_is_sent(
    pairs, published, openai_config, fake_openai, process_run, settings
):
    config = openai_config()  # saved while 127.0.0.1 was allowed
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = []
    run = process_run(start(published, config))
    assert run.status == "failed"
    assert run.error == (
        "The base URL's host 127.0.0.1 is a private, loopback or link-local address; "
        "the workers may reach it only when TEACHER_ALLOWED_PRIVATE_HOSTS allows it."
    )
    assert fake_openai.received == [] and not TeacherSample.objects.exists()


def test_a_key_tied_elsewhere_since_fails_the_run_before_anything_is_sent(
    pairs, published, openai_config, fake_openai, process_run, settings
):
    config = openai_config()
    settings.TEACHER_API_KEYS = {"openai": {"env": "OPENAI_API_KEY", "base_urls": ["https://api.openai.com/v1"]}}
    run = process_run(start(published, config))
    assert run.status == "failed"
    assert run.error == (
        f"API key openai may not be sent to {fake_openai.base_url}: it is tied to https://api.openai.com/v1."
    )
    assert fake_openai.received == []


def test_a_batch_run_is_checked_too(pairs, published, openai_config, fake_openai, settings):
    config = openai_config()
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = []
    run = start(published, config, mode="batch")
    labeling_run_batch_submit(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "is a private, loopback or link-local address" in run.error
    assert fake_openai.received == []


@pytest.fixture
def rebinding(settings, monkeypatch):
    """``teacher.test`` resolves to a public address for the worker's check, to 127.0.0.1 afterwards (DNS
    rebinding); no private host is allowed and the key is tied to nothing. Yields the lookups made."""
    settings.TEACHER_API_KEYS = UNTIED
    settings.TEACHER_ALLOWED_PRIVATE_HOSTS = []
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "teacher.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = "93.184.215.14" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


REBOUND = (
    "The base URL's host teacher.test (127.0.0.1) is a private, loopback or link-local address; "
    "the workers may reach it only when TEACHER_ALLOWED_PRIVATE_HOSTS allows it."
)


def test_a_host_that_resolves_to_a_private_address_at_connection_time_is_refused(
    pairs, published, make_config, fake_openai, process_run, rebinding
):
    config = make_config(base_url=f"http://teacher.test:{fake_openai.port}/v1", request_timeout=5, max_attempts=2)
    run = process_run(start(published, config))

    assert len(rebinding) >= 2  # the worker's check, then the connection's own lookup
    errors = set(TeacherSample.objects.filter(run=run).values_list("error_kind", "error"))
    assert errors == {("endpoint_refused", REBOUND)}
    assert fake_openai.received == []


def test_a_batch_upload_to_a_host_rebound_to_a_private_address_is_refused(
    pairs, published, make_config, fake_openai, rebinding
):
    config = make_config(base_url=f"http://teacher.test:{fake_openai.port}/v1", request_timeout=5)
    run = start(published, config, mode="batch")
    outcome = tasks.labeling_run_batch_submit.apply((run.pk,))  # as a worker runs it: its failure marks the run
    assert outcome.failed() and isinstance(outcome.result, EndpointRefused) and "teacher.test" in str(outcome.result)
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", f"batch submission: EndpointRefused: {REBOUND}")
    assert len(rebinding) >= 2 and fake_openai.received == []


class _Redirector(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(307)
        self.send_header("Location", self.target + self.path.removeprefix("/v1"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def redirector(fake_openai):
    """A server on 127.0.0.1 that redirects every request to the fake OpenAI server (another origin)."""
    handler = type("Redirect", (_Redirector,), {"target": fake_openai.base_url})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_redirect_is_not_followed(pairs, published, make_config, fake_openai, redirector, process_run):
    config = make_config(base_url=redirector, request_timeout=5, max_attempts=1)
    run = process_run(start(published, config))
    assert set(TeacherSample.objects.filter(run=run).values_list("error_kind", flat=True)) == {"http_307"}
    assert fake_openai.received == []
