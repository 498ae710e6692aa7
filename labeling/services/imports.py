"""Imports of members, jobs and pairs (one function per use case), and the mechanism every upload import shares:
the batch row, the stored upload, the worker's lease, progress and the failed state with its bad rows. A student's
predictions (``labeling.services.students``) are a kind of import that differs only in how its rows are checked
and stored (:func:`import_batch_run`)."""

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from policyhub import leases
from policyhub.jobs import error_text, failing_job
from policyhub.queueing import enqueue

from ..imports.readers import FileFormatError, RowError, detect_format, iter_rows, storable
from ..imports.schemas import SCHEMAS
from ..imports.staging import Stage
from ..models import ImportBatch
from ..pipeline import injection
from .storage import storage_delete_or_defer

log = logging.getLogger(__name__)
#: How many bad rows an import keeps for its report (the count is always exact).
ERROR_CAP = 10_000


@dataclass(frozen=True)
class ImportResult:
    batch: ImportBatch
    already_imported: bool = False
    refused: bool = False  # too large: recorded as failed without being read
    not_stored: bool = False  # the storage (folder or bucket) failed to keep the upload: recorded as failed

    @property
    def ok(self) -> bool:
        return self.batch.status == ImportBatch.Status.SUCCEEDED

    def summary(self) -> str:
        b = self.batch
        if self.already_imported:
            return (
                f"{b.source_name}: this file was already imported as {b.kind} import #{b.pk} on "
                f"{b.created_at:%Y-%m-%d %H:%M}; nothing changed."
            )
        if self.ok:
            flagged = (
                f" {b.rows_flagged} of the rows hold text aimed at a model: their pairs go to review."
                if b.rows_flagged
                else ""
            )
            return f"{b.source_name}: {b.rows_created} {b.kind} created, {b.rows_unchanged} already present.{flagged}"
        if b.error_count == 1 and b.errors and b.errors[0]["line"] == 0:  # the file as a whole
            return f"{b.source_name}: {b.errors[0]['reason']}; nothing was imported."
        more = f" (the first {len(b.errors)} are listed)" if b.error_count > len(b.errors) else ""
        return f"{b.source_name}: {b.error_count} bad rows{more}; nothing was imported."


class _Rollback(Exception):
    pass


def upload_size(stream: BinaryIO) -> int:
    """The size of an upload or a file (its position is kept at the start)."""
    size = getattr(stream, "size", None)  # an upload knows it
    if size is None:
        size = stream.seek(0, 2)
        stream.seek(0)
    return size


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MB" if size >= 1 << 20 else f"{size:,} bytes"


def too_large(size: int) -> str | None:
    """Why a file of ``size`` bytes is refused (settings.IMPORT_MAX_UPLOAD_BYTES), or None."""
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    if size <= limit:
        return None
    return f"the file is {_megabytes(size)}; imports take at most {_megabytes(limit)} (IMPORT_MAX_UPLOAD_BYTES)"


def _sha256(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def _previous_import(kind: str, sha256: str) -> ImportBatch | None:
    return ImportBatch.objects.filter(kind=kind, file_sha256=sha256, status=ImportBatch.Status.SUCCEEDED).first()


def import_batch_create(
    *, kind: str, stream: BinaryIO, name: str, user=None, file_format: str | None = None
) -> ImportResult:
    """Record an import of ``stream`` (queued), or return the earlier import of the very same file. A file over
    the size limit is recorded as failed at once (line 0, field ``file``), without reading it."""
    if kind not in ImportBatch.Kind.values:
        raise ValueError(f"Unknown import kind {kind!r}; expected one of {', '.join(ImportBatch.Kind.values)}.")
    name = storable(name)[:255]
    size = upload_size(stream)
    if reason := too_large(size):
        batch = ImportBatch.objects.create(
            kind=kind, source_name=name, file_format=file_format or "", file_size=size, created_by=user
        )
        _fail(batch, 1, [RowError(0, "file", reason)])
        return ImportResult(batch, refused=True)
    sha256, size = _sha256(stream)
    previous = _previous_import(kind, sha256) if kind != ImportBatch.Kind.STUDENTS else None
    if previous:
        return ImportResult(previous, already_imported=True)
    batch = ImportBatch.objects.create(
        kind=kind,
        source_name=name,
        file_format=file_format or "",
        file_sha256=sha256,
        file_size=size,
        created_by=user,
    )
    return ImportResult(batch)


def import_batch_run(*, batch: ImportBatch, stream: BinaryIO) -> ImportResult:
    """Run a recorded import, all or nothing.

    Any bad row (missing field, bad value or encoding, duplicate, unknown member/job id, wrong column set) fails
    the whole file, which changes no data; the batch records every bad row with its line, field and reason.
    Safe to run again after a crash: the data is written in one transaction, so a half-run left nothing.
    """
    batch.status, batch.started_at = ImportBatch.Status.RUNNING, timezone.now()
    batch.save(update_fields=["status", "started_at"])
    try:
        fmt = batch.file_format or detect_format(batch.source_name)
        batch.file_format = fmt
        if reason := too_large(upload_size(stream)):  # the limit may have been lowered since the upload
            raise FileFormatError([RowError(0, "file", reason)])
        if batch.kind == ImportBatch.Kind.STUDENTS:
            from .students import student_rows_import  # students builds on this module

            student_rows_import(batch=batch, stream=stream)
        else:
            _run_import(batch, iter_rows(stream, fmt, SCHEMAS[batch.kind], settings.IMPORT_MAX_LINE_BYTES))
    except FileFormatError as error:
        _fail(batch, len(error.errors), error.errors)
    except IntegrityError:
        previous = _previous_import(batch.kind, batch.file_sha256)
        if previous is None or batch.kind == ImportBatch.Kind.STUDENTS:
            raise
        reason = f"the same file was imported meanwhile as import #{previous.pk}; nothing changed"
        _fail(batch, 1, [RowError(0, "file", reason)])
    return ImportResult(batch)


def import_file(*, kind: str, stream: BinaryIO, name: str, user=None, file_format: str | None = None) -> ImportResult:
    """Import members, jobs or pairs from a CSV or JSONL stream now (see :func:`import_batch_run`)."""
    created = import_batch_create(kind=kind, stream=stream, name=name, user=user, file_format=file_format)
    if created.already_imported or created.refused:
        return created
    batch_id = created.batch.pk
    with failing_job(lambda error: import_batch_fail(batch_id=batch_id, error=error)):
        return import_batch_run(batch=created.batch, stream=stream)


def import_upload_enqueue(*, kind: str, upload, user) -> ImportResult:
    """Keep an uploaded file and import it on a worker after commit (large files take a while)."""
    created = import_batch_create(kind=kind, stream=upload, name=upload.name, user=user)
    if created.already_imported or created.refused:  # nothing to store
        return created
    return import_upload_store(batch=created.batch, upload=upload)


def import_upload_store(*, batch: ImportBatch, upload) -> ImportResult:
    """Keep ``upload`` for the recorded ``batch`` and send it to a worker after commit; a storage that fails
    leaves the batch failed with the reason (``not_stored``)."""
    # A folder, or an object store (STORAGE_BACKEND=s3) whose put is atomic: a multipart upload appears only when
    # complete, and an interrupted one is aborted. Either way the batch names the file only once it is all there.
    name = f"imports/{batch.pk}-{uuid.uuid4().hex}"
    try:
        stored = default_storage.save(name, upload)
    except Exception as error:  # the storage is down or refused it: say so on the import, nothing half-kept
        log.exception("import %s: storing the upload failed", batch.pk)
        storage_delete_or_defer(names=[name])  # a put that did land (its answer lost) is deleted now or later
        reason = f"the upload could not be stored for the workers; nothing was imported ({error_text(error)})"
        _fail(batch, 1, [RowError(0, "file", reason)])
        return ImportResult(batch, not_stored=True)
    batch.stored_file = stored
    batch.save(update_fields=["stored_file"])
    enqueue("labeling.tasks.import_batch_process", batch.pk)
    return ImportResult(batch)


def import_stored_run(*, batch_id: int) -> ImportResult:
    """Worker side of :func:`import_upload_enqueue`, under a lease: a re-delivered task for a finished batch, or
    for one another live worker is importing, does nothing. A batch whose worker died is imported again from the
    start (its one transaction left nothing) once the watchdog re-sends it."""
    batch = ImportBatch.objects.get(pk=batch_id)
    if batch.is_finished:
        return ImportResult(batch)
    token, seconds = leases.new_token(), settings.WORK_LEASE_SECONDS
    active = {"status__in": [ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING]}
    if not leases.lease_claim(ImportBatch, batch.pk, token, seconds, **active):
        return ImportResult(batch)
    try:
        with (
            leases.Heartbeat(ImportBatch, batch.pk, token, seconds),
            default_storage.open(batch.stored_file, "rb") as f,
        ):
            result = import_batch_run(batch=batch, stream=f)
    except BaseException:
        leases.lease_release(ImportBatch, batch.pk, token, after_error=True)  # a retry may claim it at once
        raise
    with transaction.atomic():  # the upload is let go: deleted now, or recorded for the sweep if the store is down
        storage_delete_or_defer(names=[batch.stored_file])
        ImportBatch.objects.filter(pk=batch.pk).update(stored_file="", lease_until=None, lease_token="")
    batch.stored_file, batch.lease_until, batch.lease_token = "", None, ""
    return result


#: How often a running import publishes how many rows it has read.
PROGRESS_SECONDS = 1.0


class _ProgressReporter(threading.Thread):
    """Publishes rows read so far on the batch row from its own connection, since the import itself is one
    transaction nobody else can see into until it ends."""

    def __init__(self, batch_id: int, counts: dict):
        super().__init__(name=f"import-{batch_id}-progress", daemon=True)
        self.batch_id, self.counts = batch_id, counts
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            while not self.finished.wait(PROGRESS_SECONDS):
                seen = self.counts["seen"] + self.counts["errors"]
                ImportBatch.objects.filter(pk=self.batch_id, status=ImportBatch.Status.RUNNING).update(rows_seen=seen)
        finally:
            connection.close()

    def stop(self) -> None:
        self.finished.set()
        self.join()


#: How many rows with text aimed at a model an import lists (the count is always exact).
FLAGGED_CAP = 1000


class _Flags:
    """Rows of a members or jobs import whose text is aimed at a model (``labeling.pipeline.injection``): counted,
    and the first FLAGGED_CAP matches kept for the import's report. The import goes ahead: such a pair is routed to
    review when a run labels it."""

    def __init__(self, kind: str):
        columns = SCHEMAS[kind].names
        self.id_at = 0
        self.text_at = [(i, name) for i, name in enumerate(columns) if name not in ("member_id", "job_id", "seniority")]
        self.active = kind in ("members", "jobs")
        self.rows, self.found = 0, []

    def scan(self, line: int, values: tuple) -> None:
        if not self.active:
            return
        fields = [(name, values[i]) for i, name in self.text_at if values[i]]
        matches = injection.scan_fields(fields)
        if not matches:
            return
        self.rows += 1
        for match in matches[: max(0, FLAGGED_CAP - len(self.found))]:
            self.found.append({"line": line, "id": values[self.id_at], **match.as_dict()})


def _run_import(batch: ImportBatch, rows) -> None:
    stage = Stage(batch.kind, ERROR_CAP)
    row_errors: list[RowError] = []
    counts = {"seen": 0, "errors": 0}
    flags = _Flags(batch.kind)

    def good_rows():
        for item in rows:
            if isinstance(item, RowError):
                counts["errors"] += 1
                if len(row_errors) < ERROR_CAP:
                    row_errors.append(item)
                continue
            counts["seen"] += 1
            flags.scan(*item)
            yield item

    reporter = _ProgressReporter(batch.pk, counts)
    reporter.start()
    try:
        with transaction.atomic():
            stage.create()
            try:
                stage.load(good_rows())
            finally:
                reporter.stop()
            total = counts["errors"]
            inserted = _insert_first(stage, batch.pk) if not total and stage.insert_proves_checks else None
            if inserted is None or inserted[1]:  # some rows were not inserted: the checks say whether that is bad
                for check in (stage.duplicate_errors, stage.unknown_reference_errors, stage.conflict_errors):
                    count, found = check()
                    total += count
                    row_errors.extend(found)
            batch.rows_seen = counts["seen"] + counts["errors"]
            if total:
                batch.error_count = total
                raise _Rollback  # undoes an insert made above too
            created, unchanged = inserted or stage.insert(batch_id=batch.pk)
            stage.drop()
            batch.rows_created, batch.rows_unchanged = created, unchanged
            batch.rows_flagged, batch.flagged = flags.rows, flags.found
            batch.status = ImportBatch.Status.SUCCEEDED
            batch.finished_at = timezone.now()
            batch.save()
    except _Rollback:
        _fail(batch, batch.error_count, row_errors)


def _insert_first(stage: Stage, batch_id: int) -> tuple[int, int] | None:
    """Insert before checking (see ``Stage.insert_proves_checks``); None if a pair is twice in the file: the
    checks then say which lines, the savepoint undid the insert."""
    try:
        with transaction.atomic():
            return stage.insert(batch_id=batch_id)
    except IntegrityError:
        return None


def import_batch_fail(*, batch_id: int, error: str) -> None:
    """Record the unexpected failure of an import's task (``policyhub.jobs``); the import is one transaction, so
    nothing of it was written. A finished import is left as it is."""
    batch = ImportBatch.objects.filter(pk=batch_id).first()
    if batch is None or batch.is_finished:
        return
    reason = f"the import stopped on an unexpected error; nothing was imported ({error})"
    _fail(batch, 1, [RowError(0, "file", reason)])
    if batch.stored_file:
        with transaction.atomic():
            storage_delete_or_defer(names=[batch.stored_file])
            ImportBatch.objects.filter(pk=batch.pk).update(stored_file="")


def _fail(batch: ImportBatch, count: int, errors: list[RowError]) -> None:
    errors = sorted(errors, key=lambda e: (e.line, e.field))[:ERROR_CAP]
    batch.status = ImportBatch.Status.FAILED
    batch.error_count = count
    batch.errors = [e.as_dict() for e in errors]
    batch.finished_at = timezone.now()
    batch.save()
