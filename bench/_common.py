"""Shared set-up for the benchmarks: a throw-away PostgreSQL database and Django."""

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "policyhub.settings")
os.environ.setdefault("DEBUG", "1")  # local runs: no SECRET_KEY needed (the workers they start inherit it)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/policyhub_bench")
# The benchmarks' fake OpenAI server listens on 127.0.0.1: the default key may go there, and so may the workers.
os.environ.setdefault("TEACHER_API_KEYS", "openai=OPENAI_API_KEY@https://api.openai.com/v1|127.0.0.1")
os.environ.setdefault("TEACHER_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")


def reset_database() -> None:
    """Drop and re-create the database DATABASE_URL names (only if its name contains 'bench'), then migrate."""
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(os.environ["DATABASE_URL"])
    if "bench" not in cfg["NAME"]:
        sys.exit(f"refusing to drop {cfg['NAME']!r}: use a database whose name contains 'bench'")
    admin = (
        f"host={cfg['HOST'] or '127.0.0.1'} port={cfg['PORT'] or 5432} user={cfg['USER'] or 'postgres'} dbname=postgres"
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{cfg["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stop_process(process: subprocess.Popen | None, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop a process a benchmark started without ever raising: ``sig`` first, SIGKILL if it has not exited after
    ``timeout`` s. Use SIGTERM, not SIGINT, for children: a benchmark started in the background (``cmd &`` in a
    script, a CI step) passes SIGINT on ignored, so a child would never see it."""
    if process is None or process.poll() is not None:
        return
    try:
        process.send_signal(sig)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"{name} (pid {process.pid}) did not exit {timeout:g} s after signal {sig}; killing it", file=sys.stderr)
        process.kill()
        process.wait()
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, what: str, every: float = 0.02) -> None:
    """Poll ``condition`` every ``every`` s (a run's wall time is measured to that resolution) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    sys.exit(f"timed out waiting for {what}")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its live descendants (from /proc)."""
    total, todo = 0.0, [pid]
    ticks = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def start_fake_server(port: int, latency: float, *extra: str) -> subprocess.Popen:
    """The fake OpenAI server (``tests/fakes/openai_server.py``) in its own process, once it listens."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port), "--latency", str(latency), *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 10, "the fake server")
    return server


def start_worker(log_path: Path, env: dict, processes: int) -> subprocess.Popen:
    """A Celery worker (prefork, ``processes`` children, every queue) logging to ``log_path``."""
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "policyhub", "worker", "--pool=prefork",
             f"--concurrency={processes}", "--loglevel=INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_until(lambda: " ready." in log_path.read_text(errors="replace"), 60, f"the worker (see {log_path})")
    return worker
