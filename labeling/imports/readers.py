"""Stream rows out of CSV or JSONL files, one at a time (constant memory), with their line numbers.

Each yielded item is either ``(line, values)`` with the cleaned values in schema order, or a :class:`RowError`.
A :class:`FileFormatError` means the file cannot be read at all (wrong column set, unknown format).
"""

import csv
import io
import json
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from .schemas import FieldError, ImportSchema

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


class RowError(NamedTuple):
    line: int
    field: str
    reason: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "reason": self.reason}


class FileFormatError(Exception):
    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__("; ".join(f"line {e.line}: {e.field}: {e.reason}" for e in errors))


def detect_format(filename: str) -> str:
    for suffix, fmt in FORMATS.items():
        if filename.lower().endswith(suffix):
            return fmt
    raise FileFormatError(
        [RowError(0, "file", f"{filename!r}: unknown format; use a .csv or .jsonl (one JSON object per line) file")]
    )


def _is_valid_utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate left by errors="surrogateescape": the bytes were not UTF-8
        return False
    return True


def _clean(schema: ImportSchema, line: int, raw: dict) -> tuple[int, tuple] | list[RowError]:
    values, errors = [], []
    for column in schema.columns:
        value = raw.get(column.name)
        if isinstance(value, str) and not _is_valid_utf8(value):
            errors.append(RowError(line, column.name, "bad encoding: the bytes are not valid UTF-8"))
            continue
        if column.required and (value is None or (isinstance(value, str) and not value.strip())):
            errors.append(RowError(line, column.name, "missing value"))
            continue
        try:
            values.append(column.clean(value))
        except FieldError as error:
            errors.append(RowError(line, column.name, str(error)))
    return errors if errors else (line, tuple(values))


def _check_columns(schema: ImportSchema, header: list[str]) -> list[RowError]:
    errors = []
    seen = set()
    for name in header:
        if name in seen:
            errors.append(RowError(1, name, "column appears twice"))
        seen.add(name)
        if name not in schema.names:
            errors.append(RowError(1, name or "(empty)", f"unknown column; expected {', '.join(schema.names)}"))
    errors += [RowError(1, name, "required column is missing") for name in schema.required if name not in seen]
    return errors


def iter_csv(stream: BinaryIO, schema: ImportSchema) -> Iterator[tuple[int, tuple] | RowError]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise FileFormatError([RowError(1, "file", "the file is empty; expected a header row")]) from None
    except csv.Error as error:
        raise FileFormatError([RowError(1, "file", f"not a CSV header: {error}")]) from None
    errors = _check_columns(schema, header)
    if errors:
        raise FileFormatError(errors)
    previous_end = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            yield RowError(previous_end + 1, "row", f"malformed CSV: {error}")
            previous_end = reader.line_num
            continue
        line, previous_end = previous_end + 1, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(header):
            yield RowError(line, "row", f"expected {len(header)} fields, found {len(row)}")
            continue
        result = _clean(schema, line, dict(zip(header, row, strict=True)))
        yield from result if isinstance(result, list) else (result,)


def iter_jsonl(stream: BinaryIO, schema: ImportSchema) -> Iterator[tuple[int, tuple] | RowError]:
    allowed = set(schema.names)
    for line, raw_line in enumerate(stream, start=1):
        try:
            text = raw_line.decode("utf-8-sig" if line == 1 else "utf-8")
        except UnicodeDecodeError as error:
            yield RowError(line, "row", f"bad encoding: the bytes are not valid UTF-8 ({error.reason})")
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            yield RowError(line, "row", f"not valid JSON: {error.msg} at column {error.colno}")
            continue
        if not isinstance(record, dict):
            yield RowError(line, "row", "expected a JSON object")
            continue
        unknown = sorted(set(record) - allowed)
        if unknown:
            yield RowError(line, unknown[0], f"unknown field; expected {', '.join(schema.names)}")
            continue
        result = _clean(schema, line, record)
        yield from result if isinstance(result, list) else (result,)


def iter_rows(stream: BinaryIO, fmt: str, schema: ImportSchema) -> Iterator[tuple[int, tuple] | RowError]:
    return iter_csv(stream, schema) if fmt == "csv" else iter_jsonl(stream, schema)
