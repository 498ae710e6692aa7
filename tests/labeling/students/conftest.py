"""Shared setup of the student tests: a built export (tests/exports/conftest.py's 60-pair run, three items
reviewed by humans) and predictions files in every format."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exports import services as export_services
from labeling.models import Candidate, ImportBatch, StudentPrediction
from labeling.services import gold_mark_run, import_stored_run
from labeling.services.students import export_rows, student_evaluation_import
from tests.exports.conftest import export_run  # noqa: F401 - the fixture this one builds on

SPLIT = {"train": 0.5, "validation": 0.2, "test": 0.3, "seed": 7}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Uploads are kept here for the workers (the web and the workers share it)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def work_off() -> None:
    """What a worker does with the queued student uploads, here in the test's process (the worker tests run the
    real thing: test_student_worker.py)."""
    for batch_id in ImportBatch.objects.filter(kind="students", status="queued").values_list("pk", flat=True):
        import_stored_run(batch_id=batch_id)


@pytest.fixture
def student_export(export_run, engineer, owner):  # noqa: F811
    """A ready export of the run; its three human-approved items are also gold."""
    gold_mark_run(user=owner, run=export_run)
    export, _ = export_services.export_create(
        user=engineer, version=export_run.policy_version, runs=[export_run], split=SPLIT
    )
    export = export_services.export_build(export_id=export.pk)
    assert export.status == "ready", export.error
    return export


def exported(export) -> dict[int, tuple[str, str, int]]:
    """{pair id: (split, label, run id)} of every row of the export."""
    return export_rows(export, set(Candidate.objects.values_list("pair_id", flat=True)))


def teacher_labels(export) -> dict[int, str]:
    return dict(Candidate.objects.filter(run__in=export.runs.all()).values_list("pair_id", "label"))


def csv_text(rows: list[dict], columns: list[str]) -> str:
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join("" if row.get(c) is None else str(row[c]) for c in columns))
    return "\n".join(lines) + "\n"


def jsonl_text(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def parquet_bytes(rows: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def do_import(user, export, data: str | bytes, name="preds.csv", student="tiny-bert", version="1", **kwargs):
    stream = io.BytesIO(data.encode() if isinstance(data, str) else data)
    return student_evaluation_import(
        user=user, export=export, stream=stream, name=name, student_name=student, student_version=version, **kwargs
    )


def no_predictions() -> bool:
    return not StudentPrediction.objects.exists()
