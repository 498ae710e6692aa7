"""Stream rows out of CSV or JSONL files, one at a time (constant memory), with their line numbers.

Each yielded item is either ``(line, values)`` with the cleaned values in schema order, or a :class:`RowError`.
A :class:`FileFormatError` means the file cannot be read at all (wrong column set, unknown format).

Lines are read at most ``max_line_bytes`` at a time: a longer line is a bad row (never held in memory whole).
Text a database cannot store (a NUL character, PostgreSQL refuses it; bytes that are not UTF-8) is a bad value
with its line and field, so a file has the same outcome on SQLite and PostgreSQL.
"""

import csv
import json
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

from .schemas import FieldError, ImportSchema

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


class RowError(NamedTuple):
    line: int
    field: str
    reason: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": storable(self.field), "reason": storable(self.reason)}


def storable(text: str) -> str:
    """``text`` with what no database text column takes (NUL, lone surrogates) spelled as escapes."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


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


def _unstorable(value) -> str | None:
    """Why a raw value (text, or a list of texts) cannot be stored, or None."""
    for text in value if isinstance(value, list) else (value,):
        if isinstance(text, str) and not (text.isascii() and "\x00" not in text):
            if "\x00" in text:
                return "contains a NUL character (0x00), which the database cannot store"
            if not _is_valid_utf8(text):
                return "bad encoding: the bytes are not valid UTF-8"
    return None


def _clean(schema: ImportSchema, line: int, raw: dict) -> tuple[int, tuple] | list[RowError]:
    values, errors = [], []
    for column in schema.columns:
        value = raw.get(column.name)
        if reason := _unstorable(value):
            errors.append(RowError(line, column.name, reason))
            continue
        if column.required and (value is None or (isinstance(value, str) and not value.strip())):
            errors.append(RowError(line, column.name, "missing value"))
            continue
        try:
            values.append(column.clean(value))
        except FieldError as error:
            errors.append(RowError(line, column.name, str(error)))
    return errors if errors else (line, tuple(values))


def _row_cleaner(schema: ImportSchema, header: list[str]) -> Callable[[list[str]], tuple | None]:
    """The fast path of :func:`_clean` for a CSV row in ``header`` order: the cleaned values when the row has only
    ASCII text without NUL and every value is good, else None (then :func:`_clean` finds the errors). The same
    column cleaners run, so a value is cleaned exactly as :func:`_clean` would clean it; only the work per row
    shrinks (no dict, no per-value storability test)."""
    plan = [
        (header.index(column.name) if column.name in header else None, column.fast or column.clean, column.required)
        for column in schema.columns
    ]

    def clean(row: list[str]) -> tuple | None:
        joined = "".join(row)
        if not joined.isascii() or "\x00" in joined:
            return None
        values = []
        try:
            for at, clean_value, required in plan:
                value = None if at is None else row[at]
                if required and (value is None or not value.strip()):
                    return None
                values.append(clean_value(value))
        except FieldError:
            return None
        return tuple(values)

    return clean


def _object_cleaner(schema: ImportSchema) -> Callable[[dict], tuple | None]:
    """:func:`_row_cleaner` for a JSON object (a JSONL line): the cleaned values when every value present is ASCII
    text without NUL and good, else None (then :func:`_clean` finds the errors, or cleans a list or a number)."""
    plan = [(column.name, column.fast or column.clean, column.required) for column in schema.columns]

    def clean(record: dict) -> tuple | None:
        values = []
        try:
            for name, clean_value, required in plan:
                value = record.get(name)
                if value is None:
                    if required:
                        return None
                elif (
                    type(value) is not str
                    or not value.isascii()
                    or "\x00" in value
                    or not (value.strip() or not required)
                ):
                    return None  # not plain text, or a required value left blank
                values.append(clean_value(value))
        except FieldError:
            return None
        return tuple(values)

    return clean


def clean_object(schema: ImportSchema, line: int, raw: dict, prefix: str) -> dict | list[RowError]:
    """A nested JSON object (e.g. a red-team variant's ``member``) cleaned like a row of ``schema``: its values by
    name, or its errors with ``prefix.field`` names. List columns come back as lists, not JSON text."""
    unknown = sorted(set(raw) - set(schema.names))
    if unknown:
        return [RowError(line, f"{prefix}.{unknown[0]}", f"unknown field; expected {', '.join(schema.names)}")]
    result = _clean(schema, line, raw)
    if isinstance(result, list):
        return [RowError(e.line, f"{prefix}.{e.field}", e.reason) for e in result]
    values = dict(zip(schema.names, result[1], strict=True))
    for name in LIST_COLUMNS & values.keys():
        values[name] = json.loads(values[name])
    return values


#: The columns whose cleaned value is a JSON list in text (``schemas._skill_list``).
LIST_COLUMNS = frozenset({"skills", "required_skills"})


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


#: Default longest line (bytes, line ending excluded); settings.IMPORT_MAX_LINE_BYTES sets it per installation.
MAX_LINE_BYTES = 1 << 20


class _LineTooLong(Exception):
    pass


class _Lines:
    """The lines of a binary stream, read at most ``limit`` bytes (+ line ending) at a time. A longer line is read
    to its end in pieces and dropped: iterating yields ``None`` for it, :meth:`text` raises :class:`_LineTooLong`.
    ``count`` is the number of the line last read."""

    def __init__(self, stream: BinaryIO, limit: int):
        self.stream, self.limit, self.count = stream, limit, 0

    def __iter__(self) -> Iterator[bytes | None]:
        readline, limit = self.stream.readline, self.limit
        while raw := readline(limit + 2):
            self.count += 1
            if len(raw) <= limit or len(raw.rstrip(b"\r\n")) <= limit:
                yield raw
                continue
            while raw and not raw.endswith(b"\n"):
                raw = readline(1 << 20)
            yield None

    def text(self) -> Iterator[str]:
        """Decoded lines for the csv module (a UTF-8 byte order mark at the start is dropped)."""
        for raw in self:
            if raw is None:
                raise _LineTooLong
            if self.count == 1:
                yield raw.decode("utf-8-sig", errors="surrogateescape")
            else:
                yield raw.decode("utf-8", errors="surrogateescape")

    def too_long(self) -> RowError:
        return RowError(self.count, "row", f"the line is longer than {self.limit:,} bytes (IMPORT_MAX_LINE_BYTES)")


def iter_csv(
    stream: BinaryIO, schema: ImportSchema, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, tuple] | RowError]:
    lines = _Lines(stream, max_line_bytes)
    reader = csv.reader(lines.text(), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise FileFormatError([RowError(1, "file", "the file is empty; expected a header row")]) from None
    except _LineTooLong:
        raise FileFormatError([lines.too_long()]) from None
    except csv.Error as error:
        raise FileFormatError([RowError(1, "file", f"not a CSV header: {error}")]) from None
    errors = _check_columns(schema, header)
    if errors:
        raise FileFormatError(errors)
    previous_end = lines.count
    fast = _row_cleaner(schema, header)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except _LineTooLong:
            yield lines.too_long()
            previous_end = lines.count
            reader = csv.reader(lines.text(), strict=True)  # the next record starts on the next line
            continue
        except csv.Error as error:
            yield RowError(previous_end + 1, "row", f"malformed CSV: {error}")
            previous_end = lines.count
            continue
        line, previous_end = previous_end + 1, lines.count
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(header):
            yield RowError(line, "row", f"expected {len(header)} fields, found {len(row)}")
            continue
        values = fast(row)
        if values is not None:
            yield line, values
            continue
        result = _clean(schema, line, dict(zip(header, row, strict=True)))
        yield from result if isinstance(result, list) else (result,)


def iter_jsonl(
    stream: BinaryIO, schema: ImportSchema, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, tuple] | RowError]:
    allowed, fast = set(schema.names), _object_cleaner(schema)
    lines = _Lines(stream, max_line_bytes)
    for raw_line in lines:
        line = lines.count
        if raw_line is None:
            yield lines.too_long()
            continue
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
        if not allowed.issuperset(record):
            unknown = sorted(set(record) - allowed)
            yield RowError(line, unknown[0], f"unknown field; expected {', '.join(schema.names)}")
            continue
        values = fast(record)
        if values is not None:
            yield line, values
            continue
        result = _clean(schema, line, record)
        yield from result if isinstance(result, list) else (result,)


def iter_rows(
    stream: BinaryIO, fmt: str, schema: ImportSchema, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, tuple] | RowError]:
    read = iter_csv if fmt == "csv" else iter_jsonl
    return read(stream, schema, max_line_bytes)


#: Parquet rows read at a time.
PARQUET_BATCH_ROWS = 5000


def iter_parquet(stream: BinaryIO, schema: ImportSchema) -> Iterator[tuple[int, tuple] | RowError]:
    """Rows of a Parquet file, numbered from 1 (a Parquet file has no header line), read a batch at a time and
    cleaned like CSV and JSONL rows. Columns are checked as a CSV header is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise FileFormatError([RowError(0, "file", f"not a Parquet file: {error}")]) from None
    header = [name.strip().lower() for name in parquet.schema_arrow.names]
    errors = _check_columns(schema, header)
    if errors:
        raise FileFormatError([RowError(0, e.field, e.reason) for e in errors])
    line = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for raw in batch.to_pylist():
                line += 1
                result = _clean(schema, line, {key.strip().lower(): value for key, value in raw.items()})
                yield from result if isinstance(result, list) else (result,)
    except (pa.ArrowException, OSError) as error:
        yield RowError(line + 1, "row", f"unreadable Parquet data: {error}")
