"""Shared set-up for the benchmarks: a throw-away PostgreSQL database and Django."""

import os
import resource
import signal
import subprocess
import sys
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
