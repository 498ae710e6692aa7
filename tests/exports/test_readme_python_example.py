"""The README's Python example (API section) pulls the latest export from a running server as written: it is run
as a script in a subprocess against a live server, with only the policy slug changed to the fixture's."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from exports import services as export_services
from policyhub import services

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def readme_example() -> str:
    text = README.read_text()
    start = text.index("Pull the latest export of a policy from Python")
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_the_readme_example_downloads_the_latest_archive(live_server, export_run, engineer, published, tmp_path):
    export, _ = export_services.export_create(
        user=engineer, version=published, runs=[export_run], filters={}, split={}, idempotency_key=""
    )
    export = export_services.export_build(export_id=export.pk)
    token = services.api_token_create(user=engineer, name="readme").raw
    script = readme_example().replace("member-job-match", "match")

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"POLICYHUB_URL": live_server.url, "POLICYHUB_TOKEN": token, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"export #{export.pk}: {export.archive_name}, {export.rows_total} rows"
    assert (tmp_path / export.archive_name).stat().st_size == export.archive_size
