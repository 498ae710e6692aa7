"""Dataset exports over the JSON API (ML engineers): create, list, read the manifest, download files with ranges.

curl -H "Authorization: Bearer $TOKEN" -OJ http://host/api/policies/<slug>/exports/latest/archive
"""

from ninja import Router, Schema, Status
from ninja.errors import HttpError

from labeling.models import LabelingRun
from policyhub.api_root import IDEMPOTENT, ErrorOut, TextIn, require_role
from policyhub.models import PolicyVersion
from policyhub.roles import ML_ENGINEER

from . import selectors, services
from .downloads import file_response
from .models import DatasetExport
from .selection import ExportError

router = Router(tags=["exports"])

_FILE = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
#: What a download takes and answers besides its errors (``exports/downloads.py``): range headers; the file in its
#: own content type, streamed.
DOWNLOAD = {
    "parameters": [
        {"in": "header", "name": "Range", "required": False, "schema": {"type": "string"}, "example": "bytes=100-",
         "description": "``bytes=N-`` or ``bytes=N-M`` (one range) to resume a download."},
        {"in": "header", "name": "If-Range", "required": False, "schema": {"type": "string"},
         "description": "The ``ETag`` of the copy already downloaded: the range is sent only if it still matches."},
    ],
    "responses": {
        200: {"description": "The whole file (``Accept-Ranges: bytes``; ``ETag``: its sha256).", "content": _FILE},
        302: {"description": "With ``EXPORT_DOWNLOADS=redirect`` on an object store: ``Location`` is a short-lived "
                             "presigned URL of the file (it answers ``Range`` too)."},
        206: {"description": "The bytes ``Range: bytes=N-M`` asked for (``Content-Range`` says which).",
              "content": _FILE},
        416: {"description": "The range lies outside the file (``Content-Range: bytes */<size>``)."},
    }
}  # fmt: skip


class ExportIn(TextIn):
    policy: str
    version: int
    runs: list[int] = []  # default: every run of the version
    filters: dict = {}
    split: dict = {}


class FileOut(Schema):
    name: str
    size: int
    sha256: str
    rows: int | None = None
    url: str


class ExportOut(Schema):
    id: int
    policy: str
    version: int
    runs: list[int]
    status: str
    stage: str
    rows_total: int
    rows_done: int
    error: str
    filters: dict
    split: dict
    files: list[FileOut]
    archive: FileOut | None
    manifest_url: str | None
    created_by: str | None
    created_at: str
    finished_at: str | None
    deleted_at: str | None


def _out(export: DatasetExport) -> dict:
    base = f"/api/exports/{export.pk}"
    ready = export.is_ready
    return {
        "id": export.pk,
        "policy": export.policy_version.policy.slug,
        "version": export.policy_version.number,
        "runs": sorted(run.pk for run in export.runs.all()),
        "status": export.status,
        "stage": export.stage,
        "rows_total": export.rows_total,
        "rows_done": export.rows_done,
        "error": export.error,
        "filters": export.filters,
        "split": export.split,
        "files": [{**f, "url": f"{base}/files/{f['name']}"} for f in export.files] if ready else [],
        "archive": {
            "name": export.archive_name,
            "size": export.archive_size,
            "sha256": export.archive_sha256,
            "url": f"{base}/archive",
        }
        if ready
        else None,  # fmt: skip
        "manifest_url": f"{base}/manifest" if ready else None,
        "created_by": export.created_by.get_username() if export.created_by else None,
        "created_at": export.created_at.isoformat(),
        "finished_at": export.finished_at.isoformat() if export.finished_at else None,
        "deleted_at": export.deleted_at.isoformat() if export.deleted_at else None,
    }


def _get(export_id: int) -> DatasetExport:
    try:
        return selectors.export_get(pk=export_id)
    except DatasetExport.DoesNotExist:
        raise HttpError(404, f"No export #{export_id}.") from None


#: The object store is unavailable right now (``exports.storage.StorageUnavailable``): try again later.
UNAVAILABLE = 503
_STATUS_OF = {"status": 409, "storage": UNAVAILABLE}


def _bad(error: ExportError) -> HttpError:
    return HttpError(_STATUS_OF.get(error.field, 400), f"{error.field}: {error.message}")


@router.post(
    "/exports",
    response={200: ExportOut, 202: ExportOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 503: ErrorOut},
    openapi_extra=IDEMPOTENT,
)
def create_export(request, payload: ExportIn):
    """Create an export; 202 while it builds (poll ``GET /api/exports/{id}``). Send an ``Idempotency-Key`` header:
    the same key returns the same export (200). 503: the object store is unavailable; nothing was queued."""
    require_role(request, ML_ENGINEER)
    version = PolicyVersion.objects.filter(policy__slug=payload.policy, number=payload.version).first()
    if version is None:
        raise HttpError(404, f"No version {payload.version} of policy {payload.policy!r}.")
    runs = list(LabelingRun.objects.filter(pk__in=payload.runs))
    missing = sorted(set(payload.runs) - {run.pk for run in runs})
    if missing:
        raise HttpError(404, f"No run #{missing[0]}.")
    try:
        export, created = services.export_create(
            user=request.auth, version=version, runs=runs, filters=payload.filters, split=payload.split,
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )  # fmt: skip
    except ExportError as error:
        raise _bad(error) from None
    return Status(202 if created else 200, _out(selectors.export_get(pk=export.pk)))


@router.get("/exports", response={200: list[ExportOut], 403: ErrorOut})
def list_exports(request, policy: str = "", status: str = ""):
    require_role(request, ML_ENGINEER)
    return [_out(export) for export in selectors.export_list(policy_slug=policy, status=status)]


@router.get("/exports/{export_id}", response={200: ExportOut, 403: ErrorOut, 404: ErrorOut})
def get_export(request, export_id: int):
    require_role(request, ML_ENGINEER)
    return _out(_get(export_id))


@router.delete("/exports/{export_id}", response={200: ExportOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut})
def delete_export(request, export_id: int):
    """Delete the files of an export; the export stays listed as deleted, with who and when."""
    require_role(request, ML_ENGINEER)
    try:
        services.export_delete(export=_get(export_id), user=request.auth)
    except ExportError as error:
        raise _bad(error) from None
    return _out(_get(export_id))


@router.get("/exports/{export_id}/manifest", response={200: dict, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut})
def get_manifest(request, export_id: int):
    require_role(request, ML_ENGINEER)
    export = _get(export_id)
    if not export.is_ready:
        raise HttpError(409, f"Export #{export.pk} is {export.status}: no manifest to read.")
    return export.manifest


def _download(request, export: DatasetExport, name: str):
    try:
        download = services.export_download(export, name)
    except ExportError as error:
        raise HttpError({"name": 404, "storage": UNAVAILABLE}.get(error.field, 409), error.message) from None
    return file_response(request, download.file, filename=download.filename, etag=download.etag)


@router.get(
    "/exports/{export_id}/files/{name}",
    response={403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    openapi_extra=DOWNLOAD,
)
def download_file(request, export_id: int, name: str):
    """A file of the export, streamed; ``Range: bytes=N-`` resumes an interrupted download (206)."""
    require_role(request, ML_ENGINEER)
    return _download(request, _get(export_id), name)


@router.get(
    "/exports/{export_id}/archive",
    response={403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    openapi_extra=DOWNLOAD,
)
def download_archive(request, export_id: int):
    """Every file of the export in one tar, streamed, with range support."""
    require_role(request, ML_ENGINEER)
    export = _get(export_id)
    return _download(request, export, export.archive_name)


def _latest(slug: str) -> DatasetExport:
    export = selectors.export_latest(policy_slug=slug)
    if export is None:
        raise HttpError(404, f"Policy {slug!r} has no finished export.")
    return export


@router.get("/policies/{slug}/exports/latest", response={200: ExportOut, 403: ErrorOut, 404: ErrorOut})
def latest_export(request, slug: str):
    require_role(request, ML_ENGINEER)
    return _out(_latest(slug))


@router.get(
    "/policies/{slug}/exports/latest/archive",
    response={403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    openapi_extra=DOWNLOAD,
)
def latest_archive(request, slug: str):
    """The archive of the policy's latest finished export: the one-liner's endpoint."""
    require_role(request, ML_ENGINEER)
    export = _latest(slug)
    return _download(request, export, export.archive_name)


@router.get(
    "/policies/{slug}/exports/latest/files/{name}",
    response={403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    openapi_extra=DOWNLOAD,
)
def latest_file(request, slug: str, name: str):
    require_role(request, ML_ENGINEER)
    return _download(request, _latest(slug), name)
