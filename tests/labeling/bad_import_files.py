"""Files whose import fails with a line and field on either database: text PostgreSQL cannot store, an over-long
line, an over-size file; and a clean file close to the caps that imports. Shared by the PostgreSQL and the SQLite
worker tests, so both check the very same bytes."""

from typing import NamedTuple

#: The caps the tests set (IMPORT_MAX_LINE_BYTES, IMPORT_MAX_UPLOAD_BYTES), small so the files stay small.
MAX_LINE_BYTES = 300
MAX_UPLOAD_BYTES = 4000
CAPS_ENV = {"IMPORT_MAX_LINE_BYTES": str(MAX_LINE_BYTES), "IMPORT_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES)}

HEADER = b"member_id,headline,skills,seniority,location,summary\n"


class Case(NamedTuple):
    name: str
    data: bytes
    line: int
    field: str
    reason: str  # part of the reason shown


BAD_FILES = [
    Case("nul.csv", HEADER + b"n1,Engineer,,,,fine\nn2,Nurse,,,,night\x00shifts\n", 3, "summary", "NUL character"),
    Case(
        "nul.jsonl",
        b'{"member_id": "n3", "headline": "Welder"}\n'
        b'{"member_id": "n4", "headline": "Cook", "skills": ["MIG\\u0000"]}\n',  # a JSON escape for NUL
        2,
        "skills",
        "NUL character",
    ),
    Case(
        "long.csv",
        HEADER + b"l1,Engineer,,,," + b"y" * MAX_LINE_BYTES + b"\nl2,Nurse,,,,ok\n",
        2,
        "row",
        f"longer than {MAX_LINE_BYTES} bytes",
    ),
    Case(
        "long.jsonl",
        b'{"member_id": "l3", "headline": "Cook"}\n{"member_id": "l4", "headline": "' + b"z" * MAX_LINE_BYTES + b'"}\n',
        2,
        "row",
        f"longer than {MAX_LINE_BYTES} bytes",
    ),
]
#: Valid rows, one byte over the size cap.
_rows = b"".join(b"b%03d,Member %03d,Python,mid,Lyon,\n" % (i, i) for i in range(MAX_UPLOAD_BYTES // 30))
OVERSIZE = Case("big.csv", (HEADER + _rows)[: MAX_UPLOAD_BYTES + 1], 0, "file", "imports take at most")

#: Every cap approached but none exceeded: a line of exactly MAX_LINE_BYTES bytes (+ "\r\n"), non-ASCII text.
_long_ok = b"g2,Nurse,,mid,Paris," + "é".encode() * ((MAX_LINE_BYTES - 20) // 2)
_good = HEADER + b"g1,Data engineer,Python;SQL,senior,Berlin,Builds\r\n" + _long_ok + b"\r\n"
GOOD_FILE = Case("good.csv", _good, 0, "", "")
assert len(_long_ok) == MAX_LINE_BYTES and len(GOOD_FILE.data) < MAX_UPLOAD_BYTES
