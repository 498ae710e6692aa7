"""Writes of the exports app: create an export (the row at once, the build on a worker), build it, delete it."""

import hashlib
import json
import logging
import shutil
import stat
import tarfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg import ClientCursor

from labeling.models import LabelingRun
from policyhub import leases, roles
from policyhub.jobs import TRANSIENT_ERRORS, error_text
from policyhub.models import PolicyVersion
from policyhub.prompts import system_prompt
from policyhub.queueing import enqueue

from . import selection, splits
from . import storage as storage_mod
from .manifest import build_manifest, file_entry, render_card
from .models import DEFAULT_FORMATS, DatasetExport
from .selection import ExportError, Filters, SplitRecipe
from .writers import labels_jsonl, labels_parquet, openai_chat

log = logging.getLogger(__name__)
FETCH_ROWS = 2000


def exports_root() -> Path:
    return Path(settings.EXPORTS_ROOT)


def export_dir(export: DatasetExport) -> Path:
    return exports_root() / str(export.pk)


def _require(user) -> None:
    if user is not None and not roles.has_role(user, roles.ML_ENGINEER):
        raise PermissionDenied("Exports need the role ml_engineer.")


def export_create(
    *, user, version: PolicyVersion, runs: list[LabelingRun] | None = None, filters: dict | None = None,
    split: dict | None = None, idempotency_key: str = "",
) -> tuple[DatasetExport, bool]:  # fmt: skip
    """Validate and record an export; its build is queued when the transaction commits.
    Returns (export, created): the same ``idempotency_key`` from the same user returns the first export.
    ExportError field ``storage`` when the object store is unavailable (nothing recorded)."""
    _require(user)
    key = (idempotency_key or "")[:200]
    if key and user is not None:
        existing = DatasetExport.objects.filter(created_by=user, idempotency_key=key).first()
        if existing:
            return existing, False
    if version.status != PolicyVersion.Status.PUBLISHED and version.status != PolicyVersion.Status.RETIRED:
        raise ExportError("version", f"Exports are made from published versions; v{version.number} is a draft.")
    labeling = LabelingRun.Purpose.LABELING
    chosen = list(runs) if runs else list(LabelingRun.objects.filter(policy_version=version, purpose=labeling))
    if not chosen:
        raise ExportError("runs", f"{version.policy.slug} v{version.number} has no labeling runs to export.")
    evaluations = [run.pk for run in chosen if run.purpose != labeling]
    if evaluations:
        raise ExportError("runs", f"Run #{evaluations[0]} scored a version on the gold set: it is an evaluation, "
                          "not labels to train on.")  # fmt: skip
    foreign = [run.pk for run in chosen if run.policy_version_id != version.pk]
    if foreign:
        raise ExportError("runs", f"Run #{foreign[0]} labelled another policy version, not v{version.number}.")
    active = [run.pk for run in chosen if run.is_active]
    if active:
        raise ExportError("runs", f"Run #{active[0]} is still labelling: wait for it to finish (or cancel it) so the "
                          "export does not miss its last labels.")  # fmt: skip
    parsed_filters, recipe = Filters.from_dict(filters), SplitRecipe.from_dict(split)
    try:  # a build queued while the object store is down could only fail: say so now, queue nothing
        storage_mod.check_available(storage_mod.exports_storage())
    except storage_mod.StorageUnavailable as error:
        raise ExportError("storage", f"No export was queued: {error}.") from None
    try:
        with transaction.atomic():
            export = DatasetExport.objects.create(
                policy_version=version, filters=parsed_filters.as_dict(), split=recipe.as_dict(),
                formats=DEFAULT_FORMATS, created_by=user, idempotency_key=key,
            )  # fmt: skip
            export.runs.set(chosen)
            enqueue("exports.tasks.export_build_task", export.pk)
    except IntegrityError:  # the same key raced in from a second request
        return DatasetExport.objects.get(created_by=user, idempotency_key=key), False
    return export, True


def _progress(export_id: int, stage: str):
    DatasetExport.objects.filter(pk=export_id).update(stage=stage, rows_done=0)

    def report(rows: int) -> None:
        DatasetExport.objects.filter(pk=export_id).update(rows_done=rows)

    return report


def _stream(query: selection.Query):
    """Rows of a query in constant memory. On PostgreSQL through ``COPY … TO STDOUT (FORMAT BINARY)``: the server
    streams rows while this process handles them, instead of waiting on one cursor FETCH after another. Elsewhere
    (SQLite), a plain cursor."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(query.sql, query.params)
            while rows := cursor.fetchmany(FETCH_ROWS):
                yield from rows
        return
    with _copy_out(query, "FORMAT BINARY") as copy:
        copy.set_types(["text"] * query.columns)
        yield from copy.rows()


def _stream_lines(query: selection.Query):
    """The single text column of a query as newline-terminated UTF-8 bytes, in blocks. On PostgreSQL, CSV mode
    with a delimiter and quote character that JSON text never contains (JSON escapes every control character)
    puts each value out unquoted and unescaped: the blocks are the file."""
    if connection.vendor != "postgresql":
        for (line,) in _stream(query):
            yield (line + "\n").encode()
        return
    with _copy_out(query, "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'") as copy:
        for block in copy:
            yield bytes(block)


@contextmanager
def _copy_out(query: selection.Query, options: str):
    with transaction.atomic():
        raw = connection.connection
        with raw.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")  # sorts spill to disk later than with the 4 MB default
            sql = ClientCursor(raw).mogrify(query.sql, query.params)  # COPY takes no bind parameters
            with cursor.copy(f"COPY ({sql}) TO STDOUT ({options})") as copy:
                yield copy


def _scalar(query: selection.Query):
    with connection.cursor() as cursor:
        cursor.execute(query.sql, query.params)
        return cursor.fetchone()[0]


def export_build(*, export_id: int) -> DatasetExport:
    """Build every file into a staging folder, then publish it to the exports storage in one step
    (``exports.storage.publish``) and mark the export ready. Any failure removes the staging folder and what was
    uploaded, and records the error: no half-written export ever looks complete."""
    export = DatasetExport.objects.select_related("policy_version__policy", "created_by").get(pk=export_id)
    if not export.is_active:
        return export  # a re-delivered task: built (or failed) already
    token, seconds = leases.new_token(), settings.WORK_LEASE_SECONDS
    active = {"status__in": [DatasetExport.Status.QUEUED, DatasetExport.Status.BUILDING]}
    if not leases.lease_claim(DatasetExport, export.pk, token, seconds, **active):
        return export  # another live worker is building it
    try:
        with leases.Heartbeat(DatasetExport, export.pk, token, seconds):
            built = _build(export, token)
    except BaseException:
        leases.lease_release(DatasetExport, export.pk, token, after_error=True)  # a retry may claim it at once
        raise
    leases.lease_release(DatasetExport, export.pk, token)
    return built


def _build(export: DatasetExport, token: str) -> DatasetExport:
    root, storage = exports_root(), storage_mod.exports_storage()
    staging = root / f".staging-{export.pk}"
    # a folder: <id>/ (renamed into place); an object store: <id>/<this build's token>/, never an earlier one's
    key = str(export.pk) if storage_mod.is_folder(storage) else f"{export.pk}/{token}"
    published = None
    try:
        shutil.rmtree(staging, ignore_errors=True)  # from a build that died half-way
        if storage_mod.is_folder(storage):
            shutil.rmtree(export_dir(export), ignore_errors=True)  # not ready, so never a built export's folder
        else:
            storage_mod.remove_other_builds(storage, export.pk, keep=key)
        staging.mkdir(parents=True)
        DatasetExport.objects.filter(pk=export.pk).update(
            status=DatasetExport.Status.BUILDING, started_at=timezone.now(), error="", stage="selecting rows"
        )
        manifest = _build_files(export, staging)
        DatasetExport.objects.filter(pk=export.pk).update(stage="storing the files")
        files = {entry["name"]: (entry["sha256"], entry["size"]) for entry in manifest["files"]}
        for name in ("manifest.json", export.archive_name):
            entry = file_entry(staging / name)
            files[name] = (entry["sha256"], entry["size"])
        archive_sha256, archive_size = files[export.archive_name]
        etags = storage_mod.publish(storage, staging, key, files)
        published = list(files)
        shutil.rmtree(staging, ignore_errors=True)
        done = DatasetExport.objects.filter(pk=export.pk, lease_token=token, **_ACTIVE).update(
            status=DatasetExport.Status.READY, manifest=manifest, archive_size=archive_size,
            archive_sha256=archive_sha256, stage="", finished_at=timezone.now(), rows_done=manifest["rows"],
            storage_key=key, stored_etags=etags,
        )  # fmt: skip
        if not done:  # this worker lost its lease meanwhile and another build finished (or it failed): not ours
            raise ExportSuperseded(f"export #{export.pk} was finished by another build")
    except ExportSuperseded:
        if not storage_mod.is_folder(storage):
            storage_mod.remove(storage, key, published or [])
        export.refresh_from_db()
        return export
    except Exception as error:
        _discard(storage, staging, key, published)
        if storage_mod.is_outage(error):  # nothing was published; the task tries again while the store is down
            raise storage_mod.unavailable(storage, key, error) from error
        if isinstance(error, TRANSIENT_ERRORS):
            raise  # the task tries again later; its last failure marks the export failed (policyhub.jobs)
        log.exception("export %s failed", export.pk)
        if DatasetExport.objects.filter(pk=export.pk, lease_token=token).exists():
            export_fail(export_id=export.pk, error=error_text(error))
        # else another worker took the export over (this one stalled past its lease): its build decides
        export.refresh_from_db()
        return export
    export.refresh_from_db()
    return export


_ACTIVE = {"status__in": [DatasetExport.Status.QUEUED, DatasetExport.Status.BUILDING]}


class ExportSuperseded(Exception):
    pass


def _discard(storage, staging: Path, key: str, published: list[str] | None) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if published is not None:  # published, then the database update failed: the files are nobody's
        storage_mod.remove(storage, key, published)


def export_fail(*, export_id: int, error: str) -> None:
    """Record why a queued or building export failed; its staging folder is removed, a built export is left alone."""
    shutil.rmtree(exports_root() / f".staging-{export_id}", ignore_errors=True)
    DatasetExport.objects.filter(
        pk=export_id, status__in=[DatasetExport.Status.QUEUED, DatasetExport.Status.BUILDING]
    ).update(status=DatasetExport.Status.FAILED, error=error, stage="", finished_at=timezone.now())


def _rows(query: selection.Query) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query.sql, query.params)
        return cursor.fetchall()


def _build_files(export: DatasetExport, folder: Path) -> dict:
    version = export.policy_version
    run_ids = list(export.runs.order_by("pk").values_list("pk", flat=True))
    filters, recipe = Filters.from_dict(export.filters), SplitRecipe.from_dict(export.split)
    rows_total = _scalar(selection.count_query(version, run_ids, filters))
    DatasetExport.objects.filter(pk=export.pk).update(rows_total=rows_total)
    labels_path = folder / "labels.jsonl"
    group_count = None
    with transaction.atomic():  # the split groups live in a temporary table of this transaction
        if recipe.group_by_job:
            DatasetExport.objects.filter(pk=export.pk).update(stage="grouping members by shared jobs")
            groups = splits.job_groups(_stream(selection.pairs_query(version, run_ids, filters)))
            group_count = len(set(groups.values()))
            _load_groups(groups)
        rows = labels_jsonl.write(
            _stream_lines(selection.rows_query(version, run_ids, filters, recipe)), labels_path,
            on_progress=_progress(export.pk, "writing labels.jsonl"),
        )  # fmt: skip
    prompt = system_prompt(version)
    chat_rows = openai_chat.write(
        labels_path, folder / "openai_chat.jsonl", system_prompt=prompt,
        on_progress=_progress(export.pk, "writing openai_chat.jsonl"),
    )  # fmt: skip
    parquet_rows, tally = labels_parquet.write(
        labels_path, folder / "labels.parquet", labels=version.label_keys,
        on_progress=_progress(export.pk, "writing labels.parquet"),
    )  # fmt: skip
    if not rows == chat_rows == parquet_rows:
        raise RuntimeError(f"row counts differ: {rows} labels, {chat_rows} chat, {parquet_rows} parquet")

    DatasetExport.objects.filter(pk=export.pk).update(stage="checksums and dataset card", rows_done=rows)
    files = [file_entry(folder / name, rows=rows) for name in ("labels.jsonl", "labels.parquet",
                                                               "openai_chat.jsonl")]  # fmt: skip
    counts: dict[str, dict[str, int]] = {}
    approved_by: dict[str, int] = {}
    for (split, label, by), n in sorted(tally.items()):
        counts.setdefault(split, {})[label] = counts.get(split, {}).get(label, 0) + n
        approved_by[by] = approved_by.get(by, 0) + n
    left_out = selection.left_out(dict(_rows(selection.left_out_query(version, run_ids, filters))), rows)
    manifest = build_manifest(
        export, counts=counts, rows=rows, approved_by=dict(sorted(approved_by.items())), left_out=left_out,
        system_prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(), files=files,
    )  # fmt: skip
    if group_count is not None:
        # members linked through shared jobs form one group: few groups means the split shares drift from the recipe
        manifest["split_groups"] = group_count
    card = folder / "README.md"
    card.write_text(render_card(manifest), encoding="utf-8")
    manifest["files"].append(file_entry(card))
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    _archive(folder, export)
    for path in folder.iterdir():
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # built files are read-only
    return manifest


def _load_groups(groups: dict[str, str]) -> None:
    """Fill this transaction's temporary table of split groups (member id → group key)."""
    table = selection.GROUPS_TABLE
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE TEMPORARY TABLE {table} (member_id varchar(100) PRIMARY KEY, group_key varchar(100))")
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} (member_id, group_key) FROM STDIN") as copy:
                for row in groups.items():
                    copy.write_row(row)
        else:
            insert = f"INSERT INTO {table} (member_id, group_key) VALUES (%s, %s)"  # noqa: S608 - a constant name
            cursor.executemany(insert, list(groups.items()))


def _archive(folder: Path, export: DatasetExport) -> None:
    """One uncompressed tar of every file (Parquet is compressed already), with fixed metadata."""
    mtime = int(export.created_at.timestamp())
    with tarfile.open(folder / export.archive_name, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("manifest.json", "README.md", "labels.jsonl", "labels.parquet", "openai_chat.jsonl"):
            info = tar.gettarinfo(str(folder / name), arcname=f"export-{export.pk}/{name}")
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = mtime, 0, 0, "", "", 0o444
            with open(folder / name, "rb") as handle:
                tar.addfile(info, handle)


def export_recover_stuck(*, sweep: leases.Sweep, max_recoveries: int) -> int:
    """Send again the builds that are stuck (``policyhub.leases.Sweep.stuck``: the worker died, or the message
    was lost); returns how many were sent. The watchdog calls it."""
    active = DatasetExport.objects.filter(
        status__in=[DatasetExport.Status.QUEUED, DatasetExport.Status.BUILDING], recoveries__lt=max_recoveries
    )
    stuck = sweep.stuck(active, timedelta(seconds=settings.WORK_LEASE_SECONDS))
    sent = 0
    with transaction.atomic():
        for export_id in stuck.select_for_update(skip_locked=True).values_list("pk", flat=True):
            DatasetExport.objects.filter(pk=export_id).update(
                lease_until=None, queued_at=sweep.now, recoveries=F("recoveries") + 1, recovered_at=sweep.now
            )
            enqueue("exports.tasks.export_build_task", export_id)
            sent += 1
    return sent


def export_delete(*, export: DatasetExport, user) -> DatasetExport:
    """Remove the files of an export; the row stays, with who deleted it and when, as the record. An object the
    store cannot delete now (it is down) is recorded in the same transaction and deleted later by the watchdog's
    sweep (``labeling.services.storage``): the deletion succeeds for the user either way."""
    _require(user)
    if export.status == DatasetExport.Status.DELETED:
        return export
    if export.is_active:
        raise ExportError("status", f"Export #{export.pk} is still {export.status}; wait for it to finish.")
    with transaction.atomic():
        if export.is_ready:
            storage_mod.remove(storage_mod.exports_storage(), export.key, _stored_names(export))
        export.status = DatasetExport.Status.DELETED
        export.deleted_at, export.deleted_by = timezone.now(), user
        export.save(update_fields=["status", "deleted_at", "deleted_by"])
    return export


def _stored_names(export: DatasetExport) -> list[str]:
    return [entry["name"] for entry in export.files] + ["manifest.json", export.archive_name]


def export_location(export: DatasetExport) -> str:
    """Where its files are, for people: a folder, or ``s3://bucket/…/<id>/<build>``."""
    return storage_mod.location(storage_mod.exports_storage(), export.key)


@dataclass(frozen=True)
class Download:
    file: storage_mod.StoredFile  # opened, and checked to be the one the build wrote
    filename: str  # what the browser saves it as
    etag: str  # the file's sha256: built exports never change


def export_download(export: DatasetExport, name: str) -> Download:
    """A built file (or the archive) to send, opened from the exports storage; ExportError (field ``name`` or
    ``status``) when there is none, field ``integrity`` when the stored file is not the one built (changed,
    replaced or gone behind the app's back: nothing of it is served), field ``storage`` when the object store is
    unavailable right now."""
    if not export.is_ready:
        raise ExportError("status", f"Export #{export.pk} is {export.status}: nothing to download.")
    entry = export.file_entry(name)
    if name == export.archive_name:
        etag, size = export.archive_sha256, export.archive_size
    elif name == "manifest.json" or entry is not None:
        etag, size = (entry["sha256"], entry["size"]) if entry else ("", None)
    else:
        raise ExportError("name", f"Export #{export.pk} has no file {name!r}.")
    try:
        stored = storage_mod.StoredFile.open(
            storage_mod.exports_storage(), f"{export.key}/{name}", size=size, etag=export.stored_etags.get(name, "")
        )
    except storage_mod.Tampered as error:
        log.error("export %s: %s", export.pk, error)
        raise ExportError("integrity", f"The file {name!r} of export #{export.pk} cannot be served: {error}.") from None
    except storage_mod.StorageUnavailable as error:
        log.warning("export %s: %s", export.pk, error)
        raise ExportError("storage", f"The file {name!r} of export #{export.pk} cannot be read: {error}.") from None
    filename = name if name == export.archive_name else f"export-{export.pk}-{name}"
    return Download(stored, filename, etag)


def export_read_text(export: DatasetExport, name: str) -> str:
    """A built text file (the dataset card), read whole from the exports storage."""
    return export_download(export, name).file.read_text()


def export_verify(*, export: DatasetExport) -> list[str]:
    """Read every stored file of a built export in full and compare it with the sha256 and size its manifest
    records (and the archive's); the problems found, none when the export is intact."""
    if not export.is_ready:
        raise ExportError("status", f"Export #{export.pk} is {export.status}: nothing to verify.")
    files = [*export.files, {"name": export.archive_name, "size": export.archive_size,
                             "sha256": export.archive_sha256}]  # fmt: skip
    return storage_mod.verify(storage_mod.exports_storage(), export.key, files, export.stored_etags)
