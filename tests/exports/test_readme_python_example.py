"""The README's Python example (API section) pulls the latest export from a running server as written, then the
report of the newest student evaluated on it: it is run as a script in a subprocess against a live server, with
only the policy slug changed to the fixture's."""

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from exports import services as export_services
from labeling.models import Candidate
from labeling.selectors.students import student_figures, student_report
from labeling.services.students import student_evaluation_import
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


def test_the_readme_example_prints_the_newest_students_scores(live_server, export_run, engineer, published, tmp_path):
    export, _ = export_services.export_create(
        user=engineer, version=published, runs=[export_run], filters={}, split={}, idempotency_key=""
    )
    export = export_services.export_build(export_id=export.pk)
    teacher = list(Candidate.objects.filter(run=export_run).order_by("pair_id").values_list("pair_id", "label"))
    rows = "".join(f"{pair},{'no_match' if k % 4 == 0 else label}\n" for k, (pair, label) in enumerate(teacher))
    for version in ("1", "2"):  # the example reads the newest
        evaluation = student_evaluation_import(
            user=engineer, export=export, stream=io.BytesIO(f"pair_id,label\n{rows}".encode()), name="s.csv",
            student_name="distil-match", student_version=version,
        ).evaluation  # fmt: skip
    token = services.api_token_create(user=engineer, name="readme").raw
    script = readme_example().replace("member-job-match", "match")

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"POLICYHUB_URL": live_server.url, "POLICYHUB_TOKEN": token, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()[1:]
    comparisons = student_figures(student_report(evaluation=evaluation, target_precision=0.95))["comparisons"]
    expected = [
        f"distil-match 2 vs {truth}: {'—' if c['accuracy'] is None else format(c['accuracy'], '.3f')} on {c['n']} pairs"
        for truth, c in comparisons.items()
    ]
    assert lines[: len(expected)] == expected and any(c["accuracy"] not in (None, 1.0) for c in comparisons.values())
