"""Students: a distilled student's predictions imported as an evaluation of the export it was trained on, and its
disagreements with the teacher (or gold) queued for annotators.

An import is one of the data imports (``labeling.services.imports``: an ``ImportBatch`` of kind ``students``, its
upload stored and imported on a worker under a lease, or run in process) and reads CSV and JSONL with the same
readers, Parquet a batch at a time. It is all or nothing: any bad row (unknown label, unknown pair, probabilities
that do not add up to 1, a pair twice, …) leaves the evaluation failed with its line and field, and no prediction
is written. Rows are streamed to a staging table and resolved there in set queries, so memory stays flat. What the
export said about
each pair (its split and exported label) is read from the export's own ``labels.jsonl`` when the predictions are
imported; exports never change, so it never goes stale. The scores themselves are computed when read
(``labeling.selectors.students``).

Queueing a disagreement puts the teacher's candidate (of the export's runs) in the review queue with the reason
``student_disagreement`` and the student's confidence as its priority, withdrawing the teacher's auto-accepted
label until an annotator decides: the annotator's label is then the approved label the next export takes.
"""

import json
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from exports.models import DatasetExport
from exports.services import export_dir
from policyhub import roles
from policyhub.jobs import failing_job

from ..imports.readers import FileFormatError, RowError, iter_parquet, iter_rows, storable
from ..imports.schemas import prediction_schema
from ..imports.staging import TARGETS, Stage, _json
from ..models import Candidate, ImportBatch, LabelingRun, ReviewState, StudentEvaluation, StudentPrediction
from .figures import figures_mark_stale
from .imports import (
    ERROR_CAP,
    _fail,
    _ProgressReporter,
    _Rollback,
    import_batch_create,
    import_batch_fail,
    import_batch_run,
    import_upload_store,
    too_large,
    upload_size,
)

#: Roles that may import students, read their reports and queue their disagreements.
STUDENT_ROLES = (roles.ML_ENGINEER, roles.POLICY_OWNER)
#: How far a row's probabilities may add up from 1.
PROBABILITY_TOLERANCE = 0.01
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
#: What a disagreement is measured against when queueing.
AGAINST = ("teacher", "gold", "either")


class StudentError(ValueError):
    """Input that cannot be imported or queued as asked (``field`` names what to fix); nothing was written.
    ``conflict``: the input is fine but the state is not (the export is not built, the student version exists)."""

    def __init__(self, field: str, message: str, *, conflict: bool = False):
        super().__init__(message)
        self.field, self.message, self.conflict = field, message, conflict


def require_student_role(user) -> None:
    if not roles.has_role(user, *STUDENT_ROLES):
        raise PermissionDenied("Students need the role ml_engineer or policy_owner.")


@dataclass
class StudentImportResult:
    source_name: str
    evaluation: StudentEvaluation | None = None
    created: bool = False
    errors: list[RowError] = field(default_factory=list)  # refused before it was recorded (format, size)
    error_count: int = 0
    too_large: bool = False  # over IMPORT_MAX_UPLOAD_BYTES: refused unread
    not_stored: bool = False  # the storage failed to keep the upload: the evaluation is failed with the reason

    def __post_init__(self):
        batch = self.evaluation.import_batch if self.evaluation and self.evaluation.import_batch_id else None
        if batch is not None and batch.status == ImportBatch.Status.FAILED:
            self.errors = [RowError(e["line"], e["field"], e["reason"]) for e in batch.errors]
            self.error_count = batch.error_count

    @property
    def ok(self) -> bool:
        """Recorded and not failed: ready, or (uploaded) waiting for a worker or being imported by one."""
        return self.evaluation is not None and self.evaluation.status != "failed"

    def summary(self) -> str:
        e = self.evaluation
        if e is not None and not self.created:
            return f"{self.source_name}: already imported as student evaluation #{e.pk}; nothing changed."
        if e is not None and e.status == "ready":
            return f"{self.source_name}: {e.rows} predictions of {e.student_name} {e.student_version} imported."
        if e is not None and e.status in ("pending", "running"):
            return f"{self.source_name}: queued as student evaluation #{e.pk}; a worker imports it."
        if self.error_count == 1 and self.errors and self.errors[0].line == 0:
            return f"{self.source_name}: {self.errors[0].reason}; nothing was imported."
        more = f" (the first {len(self.errors)} are listed)" if self.error_count > len(self.errors) else ""
        return f"{self.source_name}: {self.error_count} bad rows{more}; nothing was imported."


def _format(name: str, file_format: str | None) -> str:
    if file_format:
        if file_format not in set(FORMATS.values()):
            raise FileFormatError([RowError(0, "file", f"unknown format {file_format!r}; use csv, jsonl or parquet")])
        return file_format
    for suffix, fmt in FORMATS.items():
        if name.lower().endswith(suffix):
            return fmt
    raise FileFormatError([RowError(0, "file", f"{name!r}: unknown format; use a .csv, .jsonl or .parquet file")])


def _check_export(export: DatasetExport) -> None:
    if export.status != DatasetExport.Status.READY:
        raise StudentError(
            "export",
            f"Export #{export.pk} is {export.status}: a student is evaluated on a built export whose files exist "
            "(its splits and labels are read from its labels.jsonl).",
            conflict=True,
        )
    if not (export_dir(export) / "labels.jsonl").is_file():
        raise StudentError("export", f"The files of export #{export.pk} are missing on disk.", conflict=True)


def _name(value: str, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise StudentError(what, f"Give the student's {what.split('_')[1]}.")
    if len(text) > 100 or "\x00" in text:
        raise StudentError(what, f"The student's {what.split('_')[1]} must be text of at most 100 characters.")
    return text


def _evaluation_create(
    *, user, export: DatasetExport, stream: BinaryIO, name: str, student_name: str, student_version: str,
    file_format: str | None, idempotency_key: str,
) -> StudentImportResult:  # fmt: skip
    """Record the evaluation and its import (``ImportBatch`` of kind ``students``, queued), or return the one
    the same ``idempotency_key`` recorded. A version whose earlier import failed may be imported again."""
    require_student_role(user)
    source = storable(name or "predictions")[:255]
    key = (idempotency_key or "")[:200]
    if key:
        existing = StudentEvaluation.objects.filter(created_by=user, idempotency_key=key).first()
        if existing:
            return StudentImportResult(source, existing, created=False)
    student_name, student_version = _name(student_name, "student_name"), _name(student_version, "student_version")
    _check_export(export)
    earlier = StudentEvaluation.objects.filter(
        export=export, student_name=student_name, student_version=student_version
    ).first()
    if earlier and earlier.status == "failed":
        earlier.delete()  # its import stays, failed, with its bad rows
    elif earlier:
        raise StudentError(
            "student_version",
            f"{student_name} {student_version} was already evaluated on export #{export.pk} (student evaluation "
            f"#{earlier.pk}); give the new model its own version.",
            conflict=True,
        )
    if reason := too_large(upload_size(stream)):
        return StudentImportResult(source, errors=[RowError(0, "file", reason)], error_count=1, too_large=True)
    try:
        fmt = _format(source, file_format)
    except FileFormatError as error:
        return StudentImportResult(source, errors=error.errors, error_count=len(error.errors))
    try:
        with transaction.atomic():
            batch = import_batch_create(
                kind=ImportBatch.Kind.STUDENTS, stream=stream, name=source, user=user, file_format=fmt
            ).batch
            evaluation = StudentEvaluation(
                export=export, policy_version=export.policy_version, student_name=student_name,
                student_version=student_version, source_name=source, file_format=fmt, file_sha256=batch.file_sha256,
                import_batch=batch, idempotency_key=key, created_by=user,
            )  # fmt: skip
            evaluation.full_clean(validate_unique=False, validate_constraints=False)  # the database checks those
            evaluation.save()
    except IntegrityError:  # the same key, or the same student version, raced in from a second request
        existing = StudentEvaluation.objects.filter(created_by=user, idempotency_key=key).first() if key else None
        if existing:
            return StudentImportResult(source, existing, created=False)
        raise StudentError(
            "student_version",
            f"{student_name} {student_version} was just evaluated on export #{export.pk}.",
            conflict=True,
        ) from None
    return StudentImportResult(source, evaluation, created=True)


def student_evaluation_import(
    *, user, export: DatasetExport, stream: BinaryIO, name: str, student_name: str, student_version: str,
    file_format: str | None = None, idempotency_key: str = "",
) -> StudentImportResult:  # fmt: skip
    """Import a student's predictions on ``export`` now, in this process, all or nothing (the same import a worker
    runs, see :func:`student_upload_enqueue`): a bad row leaves the evaluation failed with every bad row's line and
    field. The same ``idempotency_key`` from the same user returns the first evaluation (``created`` false)."""
    result = _evaluation_create(
        user=user, export=export, stream=stream, name=name, student_name=student_name,
        student_version=student_version, file_format=file_format, idempotency_key=idempotency_key,
    )  # fmt: skip
    if not result.created:
        return result
    batch = result.evaluation.import_batch
    with failing_job(lambda error: import_batch_fail(batch_id=batch.pk, error=error)):
        import_batch_run(batch=batch, stream=stream)
    evaluation = StudentEvaluation.objects.select_related("import_batch").get(pk=result.evaluation.pk)
    return StudentImportResult(result.source_name, evaluation, created=True)


def student_upload_enqueue(
    *, user, export: DatasetExport, upload, student_name: str, student_version: str, file_format: str | None = None,
    idempotency_key: str = "",
) -> StudentImportResult:  # fmt: skip
    """Record the evaluation (pending), keep the upload and import it on a worker after commit, like the data
    imports (``labeling.services.imports``). The evaluation follows its import: pending, running, failed (with
    every bad row) or ready."""
    result = _evaluation_create(
        user=user, export=export, stream=upload, name=upload.name or "predictions", student_name=student_name,
        student_version=student_version, file_format=file_format, idempotency_key=idempotency_key,
    )  # fmt: skip
    if not result.created:
        return result
    stored = import_upload_store(batch=result.evaluation.import_batch, upload=upload)
    return StudentImportResult(result.source_name, result.evaluation, created=True, not_stored=stored.not_stored)


# --- the import itself (on a worker, or in process): rows streamed to a staging table, then set queries --------
RESOLVED = "labeling_student_resolved"
#: Why a staged row's pair cannot be used ('' when it can), as its first fault, in the order they are checked.
_PROBLEM = """CASE
    WHEN r.pair_ref <> '' AND r.by_id IS NULL THEN 'unknown_pair'
    WHEN r.pair_ref <> '' AND (COALESCE(NULLIF(r.member_ext, ''), r.pair_member) <> r.pair_member
                               OR COALESCE(NULLIF(r.job_ext, ''), r.pair_job) <> r.pair_job) THEN 'mismatch'
    WHEN r.pair_ref = '' AND r.member_pk IS NULL THEN 'unknown_member'
    WHEN r.pair_ref = '' AND r.job_pk IS NULL THEN 'unknown_job'
    WHEN r.pair_ref = '' AND r.by_ids IS NULL THEN 'no_pair'
    ELSE '' END"""


def student_rows_import(*, batch: ImportBatch, stream: BinaryIO) -> None:
    """Check and store the predictions of ``batch`` (``labeling.services.imports.import_batch_run`` calls it).
    Each row is checked on its own as it is read and the readable ones are streamed to a staging table (memory
    stays flat); their pairs are resolved there and checked for unknown pairs, contradictions and duplicates in
    set queries; then every prediction is inserted in one statement, joined to the export's rows. One
    transaction: a bad row anywhere fails the import (every fault listed with its line and field), a crash leaves
    nothing."""
    evaluation = StudentEvaluation.objects.select_related("export", "policy_version").get(import_batch=batch)
    export, version = evaluation.export, evaluation.policy_version
    try:
        _check_export(export)
    except StudentError as error:
        raise FileFormatError([RowError(0, error.field, error.message)]) from None
    labels, rule_ids = version.label_keys, {r["id"] for r in version.rules}
    schema = prediction_schema(labels)
    if batch.file_format == "parquet":
        items = iter_parquet(stream, schema)
    else:
        items = iter_rows(stream, batch.file_format, schema, settings.IMPORT_MAX_LINE_BYTES)
    counts = {"seen": 0, "errors": 0, "staged": 0}
    row_errors: list[RowError] = []
    bad_total = 0

    def bad(error: RowError) -> None:
        nonlocal bad_total
        bad_total += 1
        if len(row_errors) < ERROR_CAP:
            row_errors.append(error)

    def staged_rows():
        for item in items:
            counts["seen"] += 1
            if isinstance(item, RowError):
                bad(item)
                continue
            line, values = item
            raw = dict(zip(schema.names, values, strict=True))
            errors = _check_row(line, raw, labels, rule_ids)
            for error in errors:
                bad(error)
            if any(e.field in ("pair_id", "member_id", "job_id") for e in errors):
                continue  # its pair cannot be looked up; every row whose pair was readable is
            counts["staged"] += 1
            yield line, _staged(raw, labels)

    reporter = _ProgressReporter(batch.pk, counts)
    reporter.start()
    try:
        with transaction.atomic():
            stage = Stage("students", ERROR_CAP)
            stage.create()
            try:
                stage.load(staged_rows())
            finally:
                reporter.stop()
            batch.rows_seen = counts["seen"]
            if not counts["staged"] and not bad_total:
                raise FileFormatError([RowError(0, "file", "the file holds no predictions")])
            count, found = _resolve_staged(stage.name)
            batch.error_count = bad_total + count
            if batch.error_count:
                row_errors += found
                raise _Rollback
            _store_staged(evaluation, export)
            for table in (stage.name, RESOLVED, TARGETS["student_export"].stage):
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")  # noqa: S608 - constant names
            batch.rows_created = evaluation.rows
            batch.status, batch.finished_at = ImportBatch.Status.SUCCEEDED, timezone.now()
            batch.save()
    except _Rollback:
        _fail(batch, batch.error_count, row_errors)


def _columns(raw: dict, labels: list[str]) -> dict | None:
    given = {key: raw[f"p_{key}"] for key in labels if raw[f"p_{key}"] is not None}
    return {key: given.get(key, 0.0) for key in labels} if given else None


def _check_row(line: int, raw: dict, labels: list[str], rule_ids: set[str]) -> list[RowError]:
    errors = []
    if raw["label"] not in labels:
        errors.append(RowError(line, "label", f"{raw['label']!r} is not a label of this version; one of "
                                              f"{', '.join(labels)}"))  # fmt: skip
    if raw["pair_id"] is None:
        if not raw["member_id"] and not raw["job_id"]:
            errors.append(RowError(line, "pair_id", "missing value: give pair_id, or member_id and job_id"))
        elif not raw["member_id"]:
            errors.append(RowError(line, "member_id", "missing value (job_id needs member_id)"))
        elif not raw["job_id"]:
            errors.append(RowError(line, "job_id", "missing value (member_id needs job_id)"))
    columns = [key for key in labels if raw[f"p_{key}"] is not None]
    probs = raw["probs"]
    if probs is not None and columns:
        errors.append(RowError(line, "probs", "give the probabilities as p_<label> columns or as probs, not both"))
    elif probs is not None:
        unknown = sorted(set(probs) - set(labels))
        if unknown:
            errors.append(RowError(line, f"probs.{unknown[0]}", f"{unknown[0]!r} is not a label of this version; "
                                                                f"one of {', '.join(labels)}"))  # fmt: skip
        elif abs(sum(probs.values()) - 1) > PROBABILITY_TOLERANCE:
            errors.append(RowError(line, "probs", f"the probabilities add up to {sum(probs.values()):.4g}, not 1"))
    elif columns:
        total = sum(raw[f"p_{key}"] for key in columns)
        if abs(total - 1) > PROBABILITY_TOLERANCE:
            names = ", ".join(f"p_{key}" for key in labels)
            errors.append(RowError(line, f"p_{columns[0]}", f"{names} add up to {total:.4g}, not 1"))
    unknown_rules = [rule for rule in raw["cited_rules"] if rule not in rule_ids]
    if unknown_rules:
        errors.append(RowError(line, "cited_rules", f"{unknown_rules[0]!r} is not a rule of this version"))
    return errors


def _staged(raw: dict, labels: list[str]) -> tuple:
    """A checked row as the staging table's text values ('' for none)."""
    probabilities = raw["probs"] if raw["probs"] is not None else _columns(raw, labels)
    confidence = "" if probabilities is None else repr(min(1.0, probabilities.get(raw["label"], 0.0)))
    return (
        "" if raw["pair_id"] is None else str(raw["pair_id"]), raw["member_id"], raw["job_id"], raw["label"],
        "" if probabilities is None else json.dumps(probabilities), confidence, json.dumps(raw["cited_rules"]),
    )  # fmt: skip


def _resolve_staged(stage: str) -> tuple[int, list[RowError]]:
    """Resolve every staged row's pair (by ``pair_id``, or ``member_id`` and ``job_id``) into ``RESOLVED``; returns
    (how many rows are bad, the first ERROR_CAP): an unknown pair, member or job, a pair id contradicting its
    member and job, or a pair a row before named already."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {RESOLVED}")
        cursor.execute(f"""
            CREATE TEMPORARY TABLE {RESOLVED} AS
            SELECT r.*, {_PROBLEM} AS problem, COALESCE(r.by_id, r.by_ids) AS pid FROM (
                SELECT s.*, p.id AS by_id, pm.external_id AS pair_member, pj.external_id AS pair_job,
                       m.id AS member_pk, j.id AS job_pk, q.id AS by_ids
                FROM {stage} s
                LEFT JOIN labeling_pair p ON p.id = CAST(NULLIF(s.pair_ref, '') AS bigint)
                LEFT JOIN labeling_member pm ON pm.id = p.member_id
                LEFT JOIN labeling_job pj ON pj.id = p.job_id
                LEFT JOIN labeling_member m ON s.pair_ref = '' AND m.external_id = s.member_ext
                LEFT JOIN labeling_job j ON s.pair_ref = '' AND j.external_id = s.job_ext
                LEFT JOIN labeling_pair q ON q.member_id = m.id AND q.job_id = j.id
            ) r""")  # fmt: skip  # noqa: S608 - constant names
        cursor.execute(f"""
            SELECT r.line, r.problem, r.pair_ref, r.member_ext, r.job_ext, r.pair_member, r.pair_job, d.first_line,
                   COUNT(*) OVER ()
            FROM {RESOLVED} r LEFT JOIN (
                SELECT pid, MIN(line) AS first_line FROM {RESOLVED} WHERE problem = '' GROUP BY pid
                HAVING COUNT(*) > 1
            ) d ON r.problem = '' AND d.pid = r.pid
            WHERE r.problem <> '' OR (d.first_line IS NOT NULL AND r.line <> d.first_line)
            ORDER BY r.line LIMIT {ERROR_CAP}""")  # fmt: skip  # noqa: S608 - constant names
        rows = cursor.fetchall()
    errors = [_resolve_error(*row[:-1]) for row in rows]
    return (rows[0][-1] if rows else 0), errors


def _resolve_error(line, problem, pair_ref, member_id, job_id, member, job, first_line) -> RowError:
    if problem == "unknown_pair":
        return RowError(line, "pair_id", f"unknown pair id {int(pair_ref)}")
    if problem == "mismatch":
        return RowError(line, "pair_id", f"pair {int(pair_ref)} is member {member!r} × job {job!r}, "
                                         f"not {member_id!r} × {job_id!r}")  # fmt: skip
    if problem == "unknown_member":
        return RowError(line, "member_id", f"unknown member id {member_id!r}")
    if problem == "unknown_job":
        return RowError(line, "job_id", f"unknown job id {job_id!r}")
    if problem == "no_pair":
        return RowError(line, "member_id", f"no pair of member {member_id!r} and job {job_id!r} (import the pair "
                                           "first)")  # fmt: skip
    where = "pair_id" if pair_ref else "member_id"
    return RowError(line, where, f"duplicate of line {first_line}: the same pair")


def _export_staged(export: DatasetExport):
    """The export's rows (its ``labels.jsonl``, read a line at a time) as staging values."""
    with open(export_dir(export) / "labels.jsonl", "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            row = json.loads(raw)
            yield number, (str(row["pair_id"]), row["split"], row["label"], str(row["run_id"]))


def _store_staged(evaluation: StudentEvaluation, export: DatasetExport) -> None:
    """Insert the resolved predictions with what the export said about each pair (split and label) and the
    teacher's candidate (the exported row's run, else the latest of the export's runs that has one)."""
    exported = Stage("student_export", ERROR_CAP)
    exported.create()
    exported.load(_export_staged(export))
    runs = list(export.runs.values_list("pk", flat=True)) or [0]
    marks = ", ".join(["%s"] * len(runs))
    with connection.cursor() as cursor:
        # the candidate: the exported row's run's, else the latest run's; two subqueries, not one ordered by "is it
        # the exported row's run", as SQLite resolves no outer column in a subquery's ORDER BY
        cursor.execute(f"""
            INSERT INTO labeling_studentprediction (evaluation_id, pair_id, line, label, probabilities, confidence,
                                                    cited_rules, export_split, export_label, candidate_id)
            SELECT %s, r.pid, r.line, r.label, {_json("NULLIF(r.probs, '')")},
                   CAST(NULLIF(r.confidence, '') AS double precision), {_json("r.cited_rules")},
                   COALESCE(e.split, ''), COALESCE(e.label, ''),
                   COALESCE(
                       (SELECT c.id FROM labeling_candidate c WHERE c.pair_id = r.pid AND c.run_id IN ({marks})
                        AND c.run_id = CAST(e.run_ref AS bigint)),
                       (SELECT c.id FROM labeling_candidate c WHERE c.pair_id = r.pid AND c.run_id IN ({marks})
                        ORDER BY c.run_id DESC LIMIT 1))
            FROM {RESOLVED} r LEFT JOIN {exported.name} e ON CAST(e.pair_ref AS bigint) = r.pid
            ORDER BY r.line""", [evaluation.pk, *runs, *runs])  # fmt: skip  # noqa: S608 - constant names
    predictions = StudentPrediction.objects.filter(evaluation=evaluation)
    figures = predictions.aggregate(
        rows=Count("id"),
        with_probabilities=Count("id", filter=Q(probabilities__isnull=False)),
        with_rules=Count("id", filter=~Q(cited_rules=[])),
        in_train=Count("id", filter=Q(export_split="train")),
        in_validation=Count("id", filter=Q(export_split="validation")),
        in_test=Count("id", filter=Q(export_split="test")),
    )
    for name, value in figures.items():
        setattr(evaluation, name, value)
    evaluation.save(update_fields=list(figures))


_ROW_START = b'{"pair_id":'


def export_rows(export: DatasetExport, pair_ids: set[int]) -> dict[int, tuple[str, str, int]]:
    """{pair id: (split, exported label, run id)} of those pairs in the export's ``labels.jsonl``. Every row starts
    with its pair id (``exports.selection``), so only the rows asked for are parsed."""
    found: dict[int, tuple[str, str, int]] = {}
    with open(export_dir(export) / "labels.jsonl", "rb") as handle:
        for raw in handle:
            if raw.startswith(_ROW_START):
                end = raw.find(b",", len(_ROW_START))
                if int(raw[len(_ROW_START) : end]) not in pair_ids:
                    continue
            row = json.loads(raw)
            if row["pair_id"] in pair_ids:
                found[row["pair_id"]] = (row["split"], row["label"], row["run_id"])
    return found


# --- disagreements to review ---------------------------------------------------------------------------------
@dataclass
class QueueResult:
    against: str
    disagreements: int  # predictions disagreeing with the chosen truth (within the limit)
    queued: int  # teacher candidates put in the review queue now
    already_waiting: int  # already waiting for review or adjudication (now also marked student_disagreement)
    decided: int  # humans already decided the pair: left as it is
    no_teacher_label: int  # the export's runs have no labeled candidate for the pair

    def summary(self) -> str:
        truth = "teacher or gold" if self.against == "either" else self.against
        return (
            f"{self.disagreements} disagreements with the {truth}: "
            f"{self.queued} queued for review, {self.already_waiting} already waiting, {self.decided} already "
            f"decided by humans, {self.no_teacher_label} without a teacher label."
        )

    def as_dict(self) -> dict:
        return {
            "against": self.against, "disagreements": self.disagreements, "queued": self.queued,
            "already_waiting": self.already_waiting, "decided": self.decided,
            "no_teacher_label": self.no_teacher_label, "summary": self.summary(),
        }  # fmt: skip


def student_disagreements_queue(
    *, user, evaluation: StudentEvaluation, against: str = "teacher", limit: int | None = None
) -> QueueResult:
    """Queue the pairs where the student disagrees with the teacher (``against="teacher"``), with gold (``"gold"``)
    or with either, most confident student first, up to ``limit``. Each becomes its teacher candidate's review,
    routed ``needs_review`` with the reason ``student_disagreement`` and the student's confidence as its priority.
    Items humans already decided are left alone; items already waiting keep their place. Queueing again adds only
    what is new."""
    from ..selectors.students import student_disagreements

    require_student_role(user)
    if not evaluation.is_ready:
        raise StudentError(
            "evaluation", f"Student evaluation #{evaluation.pk} is {evaluation.status}: nothing to queue yet.",
            conflict=True,
        )  # fmt: skip
    if against not in AGAINST:
        raise StudentError("against", f"against must be one of {', '.join(AGAINST)}, not {against!r}.")
    if limit is not None and limit < 1:
        raise StudentError("limit", "limit must be a whole number of at least 1.")
    predictions = student_disagreements(evaluation=evaluation, against=against)[:limit]
    result = QueueResult(against, len(predictions), 0, 0, 0, 0)
    now = timezone.now()
    with transaction.atomic():
        ids = [p.candidate_id for p in predictions if p.candidate_id]
        locked = {
            c.pk: c for c in Candidate.objects.select_for_update(no_key=True).select_related("run").filter(pk__in=ids)
        }
        queued_ids = []
        for prediction in predictions:
            candidate = locked.get(prediction.candidate_id)
            if candidate is None or candidate.status != Candidate.Status.LABELED:
                result.no_teacher_label += 1
                continue
            if candidate.run.purpose != LabelingRun.Purpose.LABELING:  # never: exports hold labeling runs only
                result.no_teacher_label += 1
                continue
            if candidate.review_state == ReviewState.DONE:
                result.decided += 1
                continue
            priority = prediction.confidence if prediction.confidence is not None else 0.0
            candidate.reason_student_disagreement = True
            candidate.review_priority = max(priority, candidate.review_priority or 0.0)
            if candidate.review_state in (ReviewState.PENDING, ReviewState.ADJUDICATION):
                result.already_waiting += 1
            else:
                candidate.routing = Candidate.Routing.NEEDS_REVIEW
                candidate.queue(reviewers=candidate.run.reviewers_per_item)
                result.queued += 1
            candidate.save()
            queued_ids.append(prediction.pk)
        StudentPrediction.objects.filter(pk__in=queued_ids, queued_at__isnull=True).update(queued_at=now)
        figures_mark_stale(run_ids={c.run_id for c in locked.values()})  # routing and reasons of their runs
        StudentEvaluation.objects.filter(pk=evaluation.pk).update(queued_at=now, queued_by=user)
    evaluation.refresh_from_db()
    return result
