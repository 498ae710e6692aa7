"""The error text a failed job shows (``policyhub.jobs.error_text``): the exception's type and message, no
credentials, no traceback, bounded; work on a job outside a worker (``failing_job``) ends failed too. The worker
side is in tests/labeling/test_task_failures_worker.py and tests/exports/test_build_worker.py."""

import io

import psycopg
import pytest

from labeling.models import ImportBatch, Member
from labeling.services import import_file
from policyhub.jobs import MAX_ERROR_CHARS, TRANSIENT_ERRORS, error_text


def test_the_error_text_names_the_exception_and_masks_passwords_in_urls():
    error = ConnectionError("could not reach postgres://app:s3cret@db.internal:5432/ph nor redis://:hunter2@cache/0")
    text = error_text(error)
    assert text == "ConnectionError: could not reach postgres://app:***@db.internal:5432/ph nor redis://:***@cache/0"
    assert "s3cret" not in text and "hunter2" not in text


def test_the_error_text_is_one_bounded_line():
    text = error_text(ValueError("line one\nline two\n" + "x" * 10_000))
    assert text.startswith("ValueError: line one line two xxx") and "\n" not in text
    assert len(text) == MAX_ERROR_CHARS and text.endswith("…")
    assert error_text(KeyError()) == "KeyError"


def test_connection_trouble_is_retried_and_bad_data_is_not():
    assert issubclass(psycopg.OperationalError, TRANSIENT_ERRORS)
    assert not issubclass(psycopg.DataError, TRANSIENT_ERRORS)  # a NUL byte is not worth a retry


class _FailingDisk(io.BytesIO):
    """A file whose disk fails part-way through: reads past the first kilobyte raise an I/O error."""

    def readline(self, size=-1):
        if self.tell() > 1024:
            raise OSError(5, "Input/output error")
        return super().readline(size)


def test_an_import_outside_a_worker_that_breaks_ends_failed_with_the_error(db):
    data = b"member_id,headline\n" + b"".join(b"m%d,Engineer\n" % i for i in range(500))
    with pytest.raises(OSError, match="Input/output error"):
        import_file(kind="members", stream=_FailingDisk(data), name="m.csv")
    batch = ImportBatch.objects.get()
    assert batch.status == "failed" and batch.finished_at is not None
    assert "OSError: [Errno 5] Input/output error" in batch.errors[0]["reason"]
    assert Member.objects.count() == 0

    assert import_file(kind="members", stream=io.BytesIO(data), name="m.csv").ok  # the same file from a good disk
