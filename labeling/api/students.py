"""Student endpoints of the JSON API (ML engineers and policy owners): upload a student's predictions on an
export (imported on a worker: poll the evaluation), list the students, read one's report (figures as plain
numbers) and queue its disagreements for review."""

from ninja import File, Form, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from exports.models import DatasetExport
from policyhub.api_root import IDEMPOTENT, ErrorOut, TextIn, require_role
from policyhub.roles import ML_ENGINEER, POLICY_OWNER

from ..models import StudentEvaluation
from ..selectors import students as selectors
from ..services import students as services
from .common import target_precision
from .imports import RowErrorOut

router = Router(tags=["students"])
ROLES = (ML_ENGINEER, POLICY_OWNER)


class StudentImportErrorOut(Schema):
    """A file that was not imported: every bad row with its line (a Parquet file: its row) and field."""

    detail: str
    error_count: int
    errors: list[RowErrorOut]


class StudentOut(Schema):
    id: int
    url: str  # poll it while status is pending or running
    status: str  # pending, running, failed (error_count, errors) or ready (the figures)
    rows_seen: int  # rows read so far while running
    error_count: int
    errors: list[RowErrorOut]
    purpose: str
    student_name: str
    student_version: str
    export: int
    policy: str
    version: int
    runs: list[int]
    source_name: str
    file_format: str
    file_sha256: str
    rows: int
    with_probabilities: int
    with_rules: int
    in_train: int
    in_validation: int
    in_test: int
    leakage: bool
    created_by: str | None
    created_at: str
    queued_at: str | None


class StudentReportOut(StudentOut):
    warnings: list[str]
    disagreements: dict[str, int]
    queued: int
    figures: dict


class QueueIn(TextIn):
    against: str = "teacher"  # teacher, gold or either
    limit: int | None = None


class QueueOut(Schema):
    against: str
    disagreements: int
    queued: int
    already_waiting: int
    decided: int
    no_teacher_label: int
    summary: str


def _out(evaluation: StudentEvaluation) -> dict:
    version = evaluation.policy_version
    batch = evaluation.import_batch if evaluation.import_batch_id else None
    return {
        "id": evaluation.pk,
        "url": f"/api/students/{evaluation.pk}",
        "status": evaluation.status,
        "rows_seen": batch.rows_seen if batch else evaluation.rows,
        "error_count": batch.error_count if batch else 0,
        "errors": batch.errors if batch else [],
        "purpose": evaluation.purpose,
        "student_name": evaluation.student_name,
        "student_version": evaluation.student_version,
        "export": evaluation.export_id,
        "policy": version.policy.slug,
        "version": version.number,
        "runs": sorted(evaluation.export.runs.values_list("pk", flat=True)),
        "source_name": evaluation.source_name,
        "file_format": evaluation.file_format,
        "file_sha256": evaluation.file_sha256,
        "rows": evaluation.rows,
        "with_probabilities": evaluation.with_probabilities,
        "with_rules": evaluation.with_rules,
        "in_train": evaluation.in_train,
        "in_validation": evaluation.in_validation,
        "in_test": evaluation.in_test,
        "leakage": evaluation.in_train > 0,
        "created_by": evaluation.created_by.get_username() if evaluation.created_by else None,
        "created_at": evaluation.created_at.isoformat(),
        "queued_at": evaluation.queued_at.isoformat() if evaluation.queued_at else None,
    }


def _get(student_id: int) -> StudentEvaluation:
    try:
        return selectors.student_get(pk=student_id)
    except StudentEvaluation.DoesNotExist:
        raise HttpError(404, f"No student evaluation #{student_id}.") from None


@router.post(
    "/students",
    response={200: StudentOut, 202: StudentOut, 400: StudentImportErrorOut, 403: ErrorOut, 404: ErrorOut,
              409: ErrorOut, 413: StudentImportErrorOut, 503: ErrorOut},
    openapi_extra=IDEMPOTENT,
    operation_id="labeling_api_create_student",
)  # fmt: skip
def create_student(
    request, export: Form[int], student_name: Form[str], student_version: Form[str], file: File[UploadedFile]
):
    """Upload a student's predictions (CSV, JSONL or Parquet) on a built export: 202 with the evaluation, which
    a worker imports all or nothing; poll its ``url`` until ``status`` is ``ready`` or ``failed`` (every bad row in
    ``errors`` with its line and field; nothing is imported). The same ``Idempotency-Key`` returns the first
    evaluation (200). 400: a file of unknown format. 409: that student version was already evaluated on the export,
    or the export is not built. 413: the file is larger than IMPORT_MAX_UPLOAD_BYTES. 503: the upload could not be
    stored for the workers (the evaluation is failed with the reason)."""
    require_role(request, *ROLES)
    found = DatasetExport.objects.filter(pk=export).select_related("policy_version__policy").first()
    if found is None:
        raise HttpError(404, f"No export #{export}.")
    try:
        result = services.student_upload_enqueue(
            user=request.auth, export=found, upload=file, student_name=student_name,
            student_version=student_version, idempotency_key=request.headers.get("Idempotency-Key", ""),
        )  # fmt: skip
    except services.StudentError as error:
        if error.conflict:
            raise HttpError(409, f"{error.field}: {error.message}") from None
        row = {"line": 0, "field": error.field, "reason": error.message}
        return Status(400, {"detail": f"{error.field}: {error.message}", "error_count": 1, "errors": [row]})
    if result.evaluation is None:  # refused unread: nothing recorded
        errors = [e.as_dict() for e in result.errors]
        body = {"detail": result.summary(), "error_count": result.error_count, "errors": errors}
        return Status(413 if result.too_large else 400, body)
    if result.not_stored:
        raise HttpError(503, f"{result.summary()} (student evaluation #{result.evaluation.pk})")
    return Status(202 if result.created else 200, _out(selectors.student_get(pk=result.evaluation.pk)))


@router.get("/students", response={200: list[StudentOut], 403: ErrorOut}, operation_id="labeling_api_list_students")
def list_students(request, export: int | None = None):
    require_role(request, *ROLES)
    return [_out(e) for e in selectors.student_list(export_id=export)]


@router.get(
    "/students/{student_id}",
    response={200: StudentReportOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    operation_id="labeling_api_get_student",
)
def get_student(request, student_id: int, precision: str | None = None):
    """One student's report: ``figures.comparisons`` has, per truth (``gold``, ``human``, ``teacher``,
    ``test_split``), accuracy, the confusion matrix (rows: truth, columns: the student's label), per-label precision,
    recall and F1, per-rule accuracy and calibration (ECE and reliability bins). While the import is pending or
    running, or when it failed (``errors``), there is nothing to score: the figures are empty."""
    require_role(request, *ROLES)
    evaluation = _get(student_id)
    if not evaluation.is_ready:  # pending, running or failed: nothing to score yet
        return {**_out(evaluation), "warnings": [], "disagreements": {}, "queued": 0, "figures": {}}
    report = selectors.student_report(evaluation=evaluation, target_precision=target_precision(precision))
    warnings = []
    if report.leakage:
        warnings.append(
            f"{evaluation.in_train} of the {evaluation.rows} predicted pairs were in export #{evaluation.export_id}'s "
            "train split (leakage): the student saw their labels while training."
        )
    return {
        **_out(evaluation),
        "warnings": warnings,
        "disagreements": report.disagreements,
        "queued": report.queued,
        "figures": selectors.student_figures(report),
    }


@router.post(
    "/students/{student_id}/queue",
    response={200: QueueOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    operation_id="labeling_api_queue_student_disagreements",
)
def queue_disagreements(request, student_id: int, payload: QueueIn):
    """Queue the pairs where the student disagrees with the teacher, gold or either for annotators (reason
    ``student_disagreement``, the student's most confident first, at most ``limit``). Queueing again adds only new
    ones."""
    require_role(request, *ROLES)
    evaluation = _get(student_id)
    try:
        result = services.student_disagreements_queue(
            user=request.auth, evaluation=evaluation, against=payload.against, limit=payload.limit
        )
    except services.StudentError as error:  # 409: its import is not ready
        raise HttpError(409 if error.conflict else 400, f"{error.field}: {error.message}") from None
    return result.as_dict()
