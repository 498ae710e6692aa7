"""The error text a failed job shows (``policyhub.jobs.error_text``): the exception's type and message, no
credentials, no traceback, bounded."""

import psycopg

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
