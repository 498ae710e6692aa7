"""Start real Celery worker processes for tests: on the Redis broker the tests enqueue into and on the PostgreSQL
test database of this session (tests that use them must be transactional so the worker sees committed rows)."""

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from policyhub import celery_app

ROOT = Path(__file__).resolve().parents[1]
CELERY = ROOT / ".venv" / "bin" / "celery"
WAIT_SECONDS = 30


def broker_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.fail(
            f"The worker tests need Redis: set CELERY_BROKER_URL=redis://127.0.0.1:6379/0 before the tests start "
            f"(bin/test does), got {url or 'nothing'!r}."
        )
    if url != settings.CELERY_BROKER_URL:
        pytest.fail(f"Django settings read CELERY_BROKER_URL={settings.CELERY_BROKER_URL!r}, the env says {url!r}.")
    return url


def worker_database_url() -> str:
    """The URL of the test database of this session (not the one DATABASE_URL names)."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = db.get("PASSWORD") or ""
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


def purge_queue() -> None:
    """Stale messages from earlier tests would run against this database (every queue, the watchdog's too)."""
    from kombu.exceptions import ChannelError

    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        celery_app.control.purge(connection=conn)
        for name in settings.WORK_QUEUES:
            try:
                conn.default_channel.queue_purge(name)
            except ChannelError:  # Redis: an empty queue does not exist
                continue


class Worker:
    """One ``celery worker`` subprocess (solo pool) with its log in ``folder``, consuming every queue
    (``settings.WORK_QUEUES``, as ``bin/run``'s worker) unless told which."""

    def __init__(self, folder: Path, *, database_url: str, env: dict | None = None, beat: bool = False,
                 queues: tuple[str, ...] | None = None):  # fmt: skip
        """``beat``: also run Celery beat inside the worker (``-B``, as ``bin/run`` does), so the watchdog sweeps.
        ``queues``: consume only these (a deployment's pool for one kind of work)."""
        self.folder, self.beat = folder, beat
        self.queues = tuple(queues or settings.WORK_QUEUES)
        self.log_path = folder / f"worker-{uuid.uuid4().hex[:6]}.log"
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@{os.uname().nodename}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_ALLOW_ASYNC"))},
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url(),
            "DJANGO_SETTINGS_MODULE": "policyhub.settings",
            "POLICYHUB_VAR_DIR": str(folder / "var"),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        command = [
            str(CELERY), "-A", "policyhub", "worker", "--pool=solo", "--loglevel=INFO", "--without-gossip",
            "--without-mingle", "--without-heartbeat", "-n", self.hostname, f"--queues={','.join(self.queues)}",
        ]  # fmt: skip
        if self.beat:
            schedule = self.folder / f"beat-{uuid.uuid4().hex[:6]}"
            command += ["-B", f"--schedule={schedule}"]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: beat (-B) runs in a child process
            )  # fmt: skip
        self.wait_for(lambda: " ready." in self.log(), "the worker to be ready")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"The Celery worker exited with status {self.process.returncode}:\n{self.log()}")

    def wait_for(self, condition, what: str, timeout: float = WAIT_SECONDS):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            result = condition()
            if result:
                return result
            time.sleep(0.1)
        pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}. Worker log:\n{self.log()}")

    def task_succeeded(self, task_id: str) -> bool:
        return re.search(rf"\[{re.escape(task_id)}\] succeeded", self.log()) is not None

    def kill(self) -> None:
        """SIGKILL to the worker and its children (beat): it dies mid-task, as on a lost machine."""
        self._kill_group()
        self.process.wait(timeout=10)

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: finish the current task, then exit
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process:
            self._kill_group()  # whatever it left behind


@contextlib.contextmanager
def table_locked(model):
    """Hold an ACCESS EXCLUSIVE lock on ``model``'s table from a connection of its own: a worker that reaches that
    table waits there, mid-way through its task, until the block ends (the test can kill it meanwhile)."""
    import psycopg

    with psycopg.connect(worker_database_url()) as conn:
        conn.execute(f'LOCK TABLE "{model._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        yield
        conn.rollback()
