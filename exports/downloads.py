"""Streaming file downloads with HTTP range requests, so an interrupted download of a large file can resume.

Built exports never change, so a file's sha256 is a strong ETag; ``If-Range`` with it makes a resumed download
safe. One range per request (what curl ``-C -``, wget ``-c`` and browsers ask for); a request for several ranges
gets the whole file, which RFC 9110 allows.
"""

import re
from pathlib import Path

from django.http import FileResponse, HttpResponse, StreamingHttpResponse

CONTENT_TYPES = {
    ".jsonl": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".tar": "application/x-tar",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
BLOCK = 256 * 1024


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(first, last) byte of a single satisfiable range; None to ignore the header (bad syntax, several ranges);
    False when the range cannot be satisfied (416)."""
    match = _RANGE.match(header.replace(" ", ""))
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        length = int(last)
        return (max(size - length, 0), size - 1) if length and size else False
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end


def _read(path: Path, start: int, length: int):
    with open(path, "rb") as handle:
        handle.seek(start)
        while length > 0:
            block = handle.read(min(BLOCK, length))
            if not block:
                return
            length -= len(block)
            yield block


def file_response(request, path: Path, *, filename: str, etag: str = "") -> HttpResponse:
    size = path.stat().st_size
    content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    tag = f'"{etag}"' if etag else ""
    wanted = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range", "")
    span = parse_range(wanted, size) if wanted and (not if_range or (tag and if_range == tag)) else None
    if span is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif span:
        start, end = span
        response = StreamingHttpResponse(_read(path, start, end - start + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    else:
        response = FileResponse(open(path, "rb"), as_attachment=True, filename=filename, content_type=content_type)  # noqa: SIM115 - FileResponse closes it
    response["Accept-Ranges"] = "bytes"
    if tag:
        response["ETag"] = tag
    return response
