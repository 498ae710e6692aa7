"""Streaming file downloads with HTTP range requests, so an interrupted download of a large file can resume.

Built exports never change, so a file's sha256 is a strong ETag; ``If-Range`` with it makes a resumed download
safe. One range per request (what curl ``-C -``, wget ``-c`` and browsers ask for); a request for several ranges
gets the whole file, which RFC 9110 allows.
"""

import re
from pathlib import PurePosixPath

from django.conf import settings
from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from .storage import StoredFile

CONTENT_TYPES = {
    ".jsonl": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".tar": "application/x-tar",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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


def file_response(request, stored: StoredFile, *, filename: str, etag: str = "") -> HttpResponse:
    """Send a stored export file: whole (200), one range (206) or none (416). With ``EXPORT_DOWNLOADS=redirect`` and
    an object store, a GET is redirected (302) to a presigned URL of the object that expires after
    ``EXPORT_DOWNLOAD_URL_SECONDS``, so the bytes do not pass through the app (the object store answers a ``Range``
    itself; clients such as curl ``-L -C -`` send it again there). A HEAD, and a request with ``If-Range`` (it holds
    this app's ETag, the file's sha256, which the object store does not know), are answered here."""
    size = stored.size
    content_type = CONTENT_TYPES.get(PurePosixPath(stored.key).suffix, "application/octet-stream")
    tag = f'"{etag}"' if etag else ""
    wanted = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range", "")
    span = parse_range(wanted, size) if wanted and (not if_range or (tag and if_range == tag)) else None
    if settings.EXPORT_DOWNLOADS == "redirect" and request.method == "GET" and not if_range:
        url = stored.presigned_url(filename=filename, content_type=content_type)
        if url:
            response = HttpResponseRedirect(url)
            response["Cache-Control"] = "private, no-store"  # the URL is a short-lived credential
            return response
    if span is False:
        stored.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif span:
        start, end = span
        chunks = stored.chunks(start, end - start + 1)
        response = StreamingHttpResponse(chunks, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    elif stored.local_file is not None:  # a folder: FileResponse (zero-copy where the server can)
        response = FileResponse(stored.local_file, as_attachment=True, filename=filename, content_type=content_type)
    else:
        response = StreamingHttpResponse(stored.chunks(), content_type=content_type)
        response["Content-Length"] = str(size)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Accept-Ranges"] = "bytes"
    if tag:
        response["ETag"] = tag
    return response
