"""The embedded default (SQLite and the filesystem broker under a temporary var folder, no DATABASE_URL or
CELERY_BROKER_URL) for tests that must show the same behaviour there: ``manage.py`` commands, a Python snippet
run as a Django script, a real Celery worker, and read-only queries on the SQLite file."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.celery_worker import ROOT, Worker


class EmbeddedApp:
    """PolicyHub on its embedded default in ``folder`` (its var folder is ``folder/var``, as the worker's)."""

    def __init__(self, folder: Path, env: dict | None = None):
        self.folder = folder
        self.env_extra = {"DATABASE_URL": "", "CELERY_BROKER_URL": "", **(env or {})}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_ALLOW_ASYNC"))},
            "DJANGO_SETTINGS_MODULE": "policyhub.settings",
            "POLICYHUB_VAR_DIR": str(folder / "var"),
            **self.env_extra,
        }

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def script(self, code: str, *args: str):
        """Run ``code`` with Django set up and ``args`` in ``sys.argv[1:]``; returns the JSON it prints last."""
        prelude = "import django, json, sys\ndjango.setup()\n"
        done = subprocess.run(
            [sys.executable, "-c", prelude + code, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"script failed:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    def worker(self) -> Worker:
        return Worker(self.folder, database_url="", env=self.env_extra)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.folder / "var" / "policyhub.sqlite3", timeout=20) as db:
            return db.execute(sql, params).fetchall()
