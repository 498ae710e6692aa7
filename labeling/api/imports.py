"""Import endpoints of the JSON API: upload members, jobs or pairs and follow the import (ML engineers)."""

from ninja import File, Form, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from policyhub.api_root import ErrorOut, require_role
from policyhub.roles import ML_ENGINEER

from .. import selectors, services
from ..imports.schemas import SCHEMAS
from ..models import ImportBatch

router = Router(tags=["imports"])


class RowErrorOut(Schema):
    line: int
    field: str
    reason: str


class FlaggedOut(Schema):
    """A span of an imported row's text aimed at a model (its pairs go to review)."""

    line: int
    id: str
    field: str
    kind: str
    start: int
    end: int
    text: str
    label: str


class ImportOut(Schema):
    id: int
    kind: str
    source_name: str
    file_sha256: str
    status: str
    already_imported: bool = False
    rows_seen: int
    rows_created: int
    rows_unchanged: int
    error_count: int
    errors: list[RowErrorOut]
    rows_flagged: int
    flagged: list[FlaggedOut]
    created_at: str
    finished_at: str | None


def _out(batch: ImportBatch, already_imported: bool = False) -> dict:
    return {
        "id": batch.pk,
        "kind": batch.kind,
        "source_name": batch.source_name,
        "file_sha256": batch.file_sha256,
        "status": batch.status,
        "already_imported": already_imported,
        "rows_seen": batch.rows_seen,
        "rows_created": batch.rows_created,
        "rows_unchanged": batch.rows_unchanged,
        "error_count": batch.error_count,
        "errors": batch.errors,
        "rows_flagged": batch.rows_flagged,
        "flagged": batch.flagged,
        "created_at": batch.created_at.isoformat(),
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
    }


@router.post(
    "/imports",
    response={200: ImportOut, 202: ImportOut, 400: ErrorOut, 403: ErrorOut, 413: ErrorOut, 503: ErrorOut},
    operation_id="labeling_api_create_import",
)
def create_import(request, kind: Form[str], file: File[UploadedFile]):
    """Upload members, jobs or pairs (CSV or JSONL). 202: queued, poll ``GET /api/imports/{id}``;
    200 with ``already_imported``: this exact file was imported before and nothing changed. 413: the file is larger
    than IMPORT_MAX_UPLOAD_BYTES (recorded as a failed import). 503: the upload could not be stored for the
    workers (the folder or bucket failed; recorded as a failed import with the reason)."""
    require_role(request, ML_ENGINEER)
    if kind not in SCHEMAS:
        raise HttpError(400, f"kind must be one of {', '.join(SCHEMAS)}, not {kind!r}.")
    result = services.import_upload_enqueue(kind=kind, upload=file, user=request.auth)
    if result.not_stored:
        raise HttpError(503, f"{result.summary()} (recorded as import #{result.batch.pk})")
    if result.refused:
        raise HttpError(413, f"{result.summary()} (recorded as import #{result.batch.pk})")
    return Status(200 if result.already_imported else 202, _out(result.batch, result.already_imported))


@router.get("/imports", response={200: list[ImportOut], 403: ErrorOut}, operation_id="labeling_api_list_imports")
def list_imports(request):
    require_role(request, ML_ENGINEER)
    return [_out(batch) for batch in selectors.import_batch_list(with_errors=True)]


@router.get(
    "/imports/{batch_id}",
    response={200: ImportOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_get_import",
)
def get_import(request, batch_id: int):
    require_role(request, ML_ENGINEER)
    try:
        return _out(selectors.import_batch_get(pk=batch_id))
    except ImportBatch.DoesNotExist:
        raise HttpError(404, f"No import #{batch_id}.") from None
