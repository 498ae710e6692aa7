"""Students: a distilled student's predictions imported as an evaluation of the export it was trained on, and its
disagreements with the teacher (or gold) queued for annotators.

An import is all or nothing, like the data imports (``labeling.services.imports``), and reads CSV and JSONL with
the same readers, Parquet a batch at a time: any bad row (unknown label, unknown pair, probabilities that do not add
up to 1, a pair twice, …) is reported with its line and field and nothing is written. What the export said about
each pair (its split and exported label) is read from the export's own ``labels.jsonl`` when the predictions are
imported; exports never change, so it never goes stale. The scores themselves are computed when read
(``labeling.selectors.students``).

Queueing a disagreement puts the teacher's candidate (of the export's runs) in the review queue with the reason
``student_disagreement`` and the student's confidence as its priority, withdrawing the teacher's auto-accepted
label until an annotator decides: the annotator's label is then the approved label the next export takes.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import BinaryIO

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from exports.models import DatasetExport
from exports.services import export_dir
from policyhub import roles

from ..imports.readers import FileFormatError, RowError, iter_parquet, iter_rows, storable
from ..imports.schemas import prediction_schema
from ..models import Candidate, Job, LabelingRun, Member, Pair, ReviewState, StudentEvaluation, StudentPrediction
from .figures import figures_mark_stale
from .imports import ERROR_CAP, too_large

#: Roles that may import students, read their reports and queue their disagreements.
STUDENT_ROLES = (roles.ML_ENGINEER, roles.POLICY_OWNER)
#: The most predictions one file may hold (they are checked in memory, all at once).
MAX_ROWS = 200_000
#: How far a row's probabilities may add up from 1.
PROBABILITY_TOLERANCE = 0.01
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
#: What a disagreement is measured against when queueing.
AGAINST = ("teacher", "gold", "either")
_LOOKUP_CHUNK = 5000


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
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    too_large: bool = False  # over IMPORT_MAX_UPLOAD_BYTES: refused unread

    @property
    def ok(self) -> bool:
        return self.evaluation is not None

    def summary(self) -> str:
        if self.ok:
            e = self.evaluation
            if not self.created:
                return f"{self.source_name}: already imported as student evaluation #{e.pk}; nothing changed."
            return f"{self.source_name}: {e.rows} predictions of {e.student_name} {e.student_version} imported."
        if self.error_count == 1 and self.errors and self.errors[0].line == 0:
            return f"{self.source_name}: {self.errors[0].reason}; nothing was imported."
        more = f" (the first {len(self.errors)} are listed)" if self.error_count > len(self.errors) else ""
        return f"{self.source_name}: {self.error_count} bad rows{more}; nothing was imported."


@dataclass
class _Row:
    line: int
    pair_id: int | None
    member_id: str
    job_id: str
    label: str
    probabilities: dict | None
    cited_rules: list[str]


def _format(name: str, file_format: str | None) -> str:
    if file_format:
        if file_format not in set(FORMATS.values()):
            raise FileFormatError([RowError(0, "file", f"unknown format {file_format!r}; use csv, jsonl or parquet")])
        return file_format
    for suffix, fmt in FORMATS.items():
        if name.lower().endswith(suffix):
            return fmt
    raise FileFormatError([RowError(0, "file", f"{name!r}: unknown format; use a .csv, .jsonl or .parquet file")])


def _sha256(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


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


def student_evaluation_import(
    *, user, export: DatasetExport, stream: BinaryIO, name: str, student_name: str, student_version: str,
    file_format: str | None = None, idempotency_key: str = "",
) -> StudentImportResult:  # fmt: skip
    """Import a student's predictions on ``export`` as a new evaluation, all or nothing. The same
    ``idempotency_key`` from the same user returns the first evaluation (``created`` false)."""
    require_student_role(user)
    source = storable(name or "predictions")[:255]
    key = (idempotency_key or "")[:200]
    if key:
        existing = StudentEvaluation.objects.filter(created_by=user, idempotency_key=key).first()
        if existing:
            return StudentImportResult(source, existing, created=False)
    student_name, student_version = _name(student_name, "student_name"), _name(student_version, "student_version")
    _check_export(export)
    version = export.policy_version
    earlier = StudentEvaluation.objects.filter(
        export=export, student_name=student_name, student_version=student_version
    ).first()
    if earlier:
        raise StudentError(
            "student_version",
            f"{student_name} {student_version} was already evaluated on export #{export.pk} (student evaluation "
            f"#{earlier.pk}); give the new model its own version.",
            conflict=True,
        )
    try:
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(0)
        if reason := too_large(size):
            return StudentImportResult(source, errors=[RowError(0, "file", reason)], error_count=1, too_large=True)
        fmt = _format(source, file_format)
        sha256, _ = _sha256(stream)
        rows, refs, errors, error_count = _read(stream, fmt, version.label_keys, {r["id"] for r in version.rules})
    except FileFormatError as error:
        return StudentImportResult(source, errors=error.errors, error_count=len(error.errors))
    resolved, found, count = _resolve(refs)  # every row whose values were readable: all its faults are listed
    errors += found
    error_count += count
    if error_count:
        errors = sorted(errors, key=lambda e: (e.line, e.field))[:ERROR_CAP]
        return StudentImportResult(source, errors=errors, error_count=error_count)
    try:
        with transaction.atomic():
            evaluation = _store(
                export, rows, resolved, user=user, source=source, fmt=fmt, sha256=sha256, key=key,
                student_name=student_name, student_version=student_version,
            )  # fmt: skip
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


def _read(stream: BinaryIO, fmt: str, labels: list[str], rule_ids: set[str]):
    """The file's rows, each checked on its own: (good rows, every readable row for the pair look-up, errors,
    error count)."""
    schema = prediction_schema(labels)
    names = schema.names
    items = iter_parquet(stream, schema) if fmt == "parquet" else iter_rows(stream, fmt, schema)
    rows, refs, errors, count = [], [], [], 0

    def bad(error: RowError) -> None:
        nonlocal count
        count += 1
        if len(errors) < ERROR_CAP:
            errors.append(error)

    for item in items:
        if isinstance(item, RowError):
            bad(item)
            continue
        line, values = item
        if len(rows) >= MAX_ROWS:
            raise FileFormatError([RowError(line, "row", f"more than {MAX_ROWS:,} predictions in one file")])
        raw = dict(zip(names, values, strict=True))
        row_errors = _check_row(line, raw, labels, rule_ids)
        for error in row_errors:
            bad(error)
        probabilities = raw["probs"] if raw["probs"] is not None else _columns(raw, labels)
        row = _Row(line, raw["pair_id"], raw["member_id"], raw["job_id"], raw["label"], probabilities,
                   raw["cited_rules"])  # fmt: skip
        if not any(e.field in ("pair_id", "member_id", "job_id") for e in row_errors):
            refs.append(row)
        if not row_errors:
            rows.append(row)
    if not refs and not count:
        raise FileFormatError([RowError(0, "file", "the file holds no predictions")])
    return rows, refs, errors, count


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


def _chunks(values: list, size: int = _LOOKUP_CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _resolve(rows: list[_Row]) -> tuple[dict[int, int], list[RowError], int]:
    """{line: pair id} of every row, and the rows whose pair is unknown, contradicts itself or comes twice."""
    member_ids = sorted({r.member_id for r in rows if r.member_id})
    job_ids = sorted({r.job_id for r in rows if r.job_id})
    members, jobs = {}, {}
    for chunk in _chunks(member_ids):
        members.update(Member.objects.filter(external_id__in=chunk).values_list("external_id", "id"))
    for chunk in _chunks(job_ids):
        jobs.update(Job.objects.filter(external_id__in=chunk).values_list("external_id", "id"))
    by_members: dict[tuple[int, int], int] = {}
    for chunk in _chunks(sorted(set(members.values()))):
        rows_of = Pair.objects.filter(member_id__in=chunk, job_id__in=list(jobs.values()) or [0])
        by_members.update({(m, j): p for p, m, j in rows_of.values_list("id", "member_id", "job_id")})
    given = sorted({r.pair_id for r in rows if r.pair_id is not None})
    by_id: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(given):
        found = Pair.objects.filter(pk__in=chunk).values_list("id", "member__external_id", "job__external_id")
        by_id.update({p: (m, j) for p, m, j in found})
    errors, resolved, first_line = [], {}, {}
    for row in rows:
        pair_id, where = None, "pair_id"
        if row.pair_id is not None:
            if row.pair_id not in by_id:
                errors.append(RowError(row.line, "pair_id", f"unknown pair id {row.pair_id}"))
                continue
            pair_id = row.pair_id
            if row.member_id or row.job_id:
                member, job = by_id[pair_id]
                if (row.member_id or member, row.job_id or job) != (member, job):
                    errors.append(RowError(row.line, "pair_id", f"pair {pair_id} is member {member!r} × job {job!r}, "
                                                                f"not {row.member_id!r} × {row.job_id!r}"))  # fmt: skip
                    continue
        else:
            where = "member_id"
            if row.member_id not in members:
                errors.append(RowError(row.line, "member_id", f"unknown member id {row.member_id!r}"))
                continue
            if row.job_id not in jobs:
                errors.append(RowError(row.line, "job_id", f"unknown job id {row.job_id!r}"))
                continue
            pair_id = by_members.get((members[row.member_id], jobs[row.job_id]))
            if pair_id is None:
                errors.append(RowError(row.line, "member_id", f"no pair of member {row.member_id!r} and job "
                                                              f"{row.job_id!r} (import the pair first)"))  # fmt: skip
                continue
        if pair_id in first_line:
            errors.append(RowError(row.line, where, f"duplicate of line {first_line[pair_id]}: the same pair"))
            continue
        first_line[pair_id] = row.line
        resolved[row.line] = pair_id
    return resolved, errors[:ERROR_CAP], len(errors)


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


def _teacher_candidates(export: DatasetExport, pair_ids: list[int], exported: dict) -> dict[int, int]:
    """{pair id: candidate id}: the exported row's candidate, else the latest of the export's runs that has one."""
    run_ids = list(export.runs.values_list("pk", flat=True))
    picked: dict[int, tuple[int, int]] = {}
    for chunk in _chunks(pair_ids):
        rows = Candidate.objects.filter(run_id__in=run_ids, pair_id__in=chunk).values_list("pair_id", "run_id", "id")
        for pair_id, run_id, candidate_id in rows:
            wanted = exported.get(pair_id, (None, None, None))[2]
            rank = (run_id == wanted, run_id)
            if pair_id not in picked or rank > picked[pair_id][0]:
                picked[pair_id] = (rank, candidate_id)
    return {pair_id: candidate_id for pair_id, (_rank, candidate_id) in picked.items()}


def _store(export, rows, resolved, *, user, source, fmt, sha256, key, student_name, student_version):
    pair_ids = set(resolved.values())
    exported = export_rows(export, pair_ids)
    candidates = _teacher_candidates(export, sorted(pair_ids), exported)
    splits = [exported.get(resolved[r.line], ("",))[0] for r in rows]
    evaluation = StudentEvaluation(
        export=export, policy_version=export.policy_version, student_name=student_name,
        student_version=student_version, source_name=source, file_format=fmt, file_sha256=sha256, rows=len(rows),
        with_probabilities=sum(1 for r in rows if r.probabilities is not None),
        with_rules=sum(1 for r in rows if r.cited_rules), in_train=splits.count("train"),
        in_validation=splits.count("validation"), in_test=splits.count("test"), idempotency_key=key,
        created_by=user,
    )  # fmt: skip
    evaluation.full_clean(validate_unique=False, validate_constraints=False)  # the database checks those
    evaluation.save()
    predictions = []
    for row in rows:
        pair_id = resolved[row.line]
        split, label, _run = exported.get(pair_id, ("", "", None))
        probs = row.probabilities
        predictions.append(StudentPrediction(
            evaluation=evaluation, pair_id=pair_id, line=row.line, label=row.label, probabilities=probs,
            confidence=None if probs is None else min(1.0, probs.get(row.label, 0.0)), cited_rules=row.cited_rules,
            export_split=split, export_label=label, candidate_id=candidates.get(pair_id),
        ))  # fmt: skip
    StudentPrediction.objects.bulk_create(predictions, batch_size=2000)
    return evaluation


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
