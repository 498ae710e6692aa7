# ruff: noqa: S608 - table and column names come from the constants below, values are always parameters
"""Load cleaned rows into a temporary staging table, check them there in SQL, then insert them in one statement.

Checks that need the whole file (duplicates inside it, ids already taken with other data, pairs naming unknown
members or jobs) run as set queries on the staging table, so memory stays flat however large the file is. On
PostgreSQL rows go in with ``COPY … FROM STDIN`` through psycopg 3; on the embedded SQLite with batched inserts.
"""

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .readers import RowError

log = logging.getLogger(__name__)

STAGE = "labeling_import_stage"
BATCH = 5000
#: Characters of CSV sent to COPY at a time.
COPY_CHUNK = 1 << 20
#: PostgreSQL's work_mem for the import's transaction (the server's memory per hash or sort, not this process's).
WORK_MEM = "64MB"


@dataclass(frozen=True)
class Target:
    table: str
    stage_columns: tuple[str, ...]  # after "line"; the schema's columns in order
    key: tuple[str, ...]  # identity of a row within a file
    json_columns: tuple[str, ...] = ()
    stage: str = STAGE  # the temporary table's name (one import may stage two files)


TARGETS = {
    "members": Target(
        "labeling_member",
        ("external_id", "headline", "skills", "seniority", "location", "summary"),
        ("external_id",),
        ("skills",),
    ),
    "jobs": Target(
        "labeling_job",
        ("external_id", "title", "description", "required_skills", "seniority", "location"),
        ("external_id",),
        ("required_skills",),
    ),
    "pairs": Target("labeling_pair", ("member_ext", "job_ext"), ("member_ext", "job_ext")),
    # A student's checked predictions (``labeling.services.students``): every value as text, '' for none; the
    # pair is resolved, and the export's rows joined, by set queries there.
    "students": Target(
        "labeling_studentprediction",
        ("pair_ref", "member_ext", "job_ext", "label", "probs", "confidence", "cited_rules"),
        ("line",),
        ("probs", "cited_rules"),
    ),
    # The rows of the export the student is scored on (its labels.jsonl): pair, split, exported label, run.
    "student_export": Target(
        "", ("pair_ref", "split", "label", "run_ref"), ("pair_ref",), stage="labeling_student_export_stage"
    ),
}


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _json(expr: str) -> str:
    """A staging column (text) as the database's JSON value."""
    return f"{expr}::jsonb" if _pg() else f"json({expr})"


class Stage:
    """The staging table for one import; use inside ``transaction.atomic()``."""

    def __init__(self, kind: str, error_cap: int):
        self.kind = kind
        self.target = TARGETS[kind]
        self.error_cap = error_cap
        self.name = self.target.stage

    def create(self) -> None:
        columns = ", ".join(f"{name} text NOT NULL" for name in self.target.stage_columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
            suffix = " ON COMMIT DROP" if _pg() else ""
            cursor.execute(f"CREATE TEMPORARY TABLE {self.name} (line integer NOT NULL, {columns}){suffix}")
            if _pg():  # the set checks hash and sort the whole file: in memory, not spilled to disk at 4 MB
                cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")

    def load(self, rows: Iterable[tuple[int, tuple]]) -> None:
        names = ", ".join(("line", *self.target.stage_columns))
        with connection.cursor() as cursor:
            if _pg():
                # Rows go as CSV text, written by the csv module and sent a chunk at a time: far less Python work
                # per row than psycopg's write_row. FORCE_NOT_NULL: an empty value is the empty text, not NULL.
                # The csv module quotes a value holding a character of the line ending: "\r\n" makes it quote a
                # lone "\r" too, which PostgreSQL would otherwise read as the end of the row.
                options = f"FORMAT csv, FORCE_NOT_NULL ({', '.join(self.target.stage_columns)})"
                buffer = io.StringIO()
                writerow = csv.writer(buffer, lineterminator="\r\n").writerow
                with cursor.cursor.copy(f"COPY {self.name} ({names}) FROM STDIN ({options})") as copy:
                    for line, values in rows:
                        writerow((line, *values))
                        if buffer.tell() >= COPY_CHUNK:
                            copy.write(buffer.getvalue())
                            buffer.seek(0)
                            buffer.truncate()
                    copy.write(buffer.getvalue())
                cursor.execute(f"ANALYZE {self.name}")
                return
            marks = ", ".join(["%s"] * (1 + len(self.target.stage_columns)))
            sql = f"INSERT INTO {self.name} ({names}) VALUES ({marks})"
            batch: list[tuple] = []
            for line, values in rows:
                batch.append((line, *values))
                if len(batch) >= BATCH:
                    cursor.executemany(sql, batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)

    # --- checks over the whole file --------------------------------------------------------------------------
    def _errors(self, sql: str, field: str, reason) -> tuple[int, list[RowError]]:
        """Run ``sql`` (selecting line first) and turn rows into errors; returns (total, first error_cap)."""
        with connection.cursor() as cursor:  # one pass: the count over all problems rides on the first rows
            cursor.execute(f"SELECT *, COUNT(*) OVER () FROM ({sql}) AS problems ORDER BY 1 LIMIT {self.error_cap}")
            rows = cursor.fetchall()
        total = rows[0][-1] if rows else 0
        return total, [RowError(row[0], field, reason(*row[1:-1])) for row in rows]

    def duplicate_errors(self) -> tuple[int, list[RowError]]:
        key = self.target.key
        join = " AND ".join(f"f.{k} = s.{k}" for k in key)
        sql = (
            f"SELECT s.line, f.first_line FROM {self.name} s JOIN (SELECT {', '.join(key)}, MIN(line) AS first_line "
            f"FROM {self.name} GROUP BY {', '.join(key)} HAVING COUNT(*) > 1) f ON {join} WHERE s.line <> f.first_line"
        )
        field = "member_id, job_id" if self.kind == "pairs" else key[0].replace("external_id", self._id_field)
        return self._errors(sql, field, lambda first: f"duplicate of line {first}")

    @property
    def _id_field(self) -> str:
        return "member_id" if self.kind == "members" else "job_id"

    def conflict_errors(self) -> tuple[int, list[RowError]]:
        """Members/jobs whose id exists already with different data (the data labels were made on)."""
        if self.kind == "pairs":
            return 0, []
        stored_json = (lambda expr: expr) if _pg() else _json  # SQLite: normalise both sides' JSON text
        differs = " OR ".join(
            f"{stored_json('t.' + c)} <> {_json('s.' + c)}" if c in self.target.json_columns else f"t.{c} <> s.{c}"
            for c in self.target.stage_columns
            if c != "external_id"
        )
        sql = (
            f"SELECT s.line, s.external_id FROM {self.name} s JOIN {self.target.table} t "
            f"ON t.external_id = s.external_id WHERE {differs}"
        )
        return self._errors(
            sql, self._id_field, lambda ext: f"{ext!r} already exists with different data; profiles are not overwritten"
        )

    def unknown_reference_errors(self) -> tuple[int, list[RowError]]:
        if self.kind != "pairs":
            return 0, []
        total = 0
        errors: list[RowError] = []
        for column, table, field in (
            ("member_ext", "labeling_member", "member_id"),
            ("job_ext", "labeling_job", "job_id"),
        ):
            sql = (
                f"SELECT s.line, s.{column} FROM {self.name} s LEFT JOIN {table} t ON t.external_id = s.{column} "
                "WHERE t.id IS NULL"
            )
            count, found = self._errors(sql, field, lambda ext, what=field[:-3]: f"unknown {what} id {ext!r}")
            total += count
            errors += found
        return total, errors

    # --- the insert --------------------------------------------------------------------------------------------
    @property
    def insert_proves_checks(self) -> bool:
        """Whether inserting first may stand in for the checks when every row is inserted: a pair naming an unknown
        member or job is dropped by the insert's join, and a second copy of a pair breaks the unique index, so
        if every staged pair was created none of them was bad. Members and jobs are checked first (a duplicate
        id would break their insert, and a changed profile would be lost)."""
        return self.kind == "pairs"

    def insert(self, *, batch_id: int) -> tuple[int, int]:
        """Insert the rows not present yet; returns (created, unchanged). Pairs raise ``IntegrityError`` for a
        pair twice in the file (the checks then say which lines); the transaction is unusable until rolled back."""
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {self.name}")
            staged = cursor.fetchone()[0]
            pairs = self.kind == "pairs"
            if pairs:
                sql = (
                    "INSERT INTO labeling_pair (member_id, job_id, import_batch_id, created_at) "
                    f"SELECT m.id, j.id, %s, %s FROM {self.name} s "
                    "JOIN labeling_member m ON m.external_id = s.member_ext "
                    "JOIN labeling_job j ON j.external_id = s.job_ext "
                    "WHERE NOT EXISTS (SELECT 1 FROM labeling_pair p WHERE p.member_id = m.id AND p.job_id = j.id) "
                    "ORDER BY m.id, j.id"  # the unique index, job_id's and the primary key grow in order
                )
            else:
                columns = self.target.stage_columns
                select = ", ".join(_json(f"s.{c}") if c in self.target.json_columns else f"s.{c}" for c in columns)
                sql = (
                    f"INSERT INTO {self.target.table} ({', '.join(columns)}, import_batch_id, created_at) "
                    f"SELECT {select}, %s, %s FROM {self.name} s WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {self.target.table} t WHERE t.external_id = s.external_id)"
                )
            with references_proved(cursor, batch_id, pairs=pairs):
                cursor.execute(sql, [batch_id, now])
                created = cursor.rowcount  # read before the context's own statement replaces it
        return created, staged - created


@contextmanager
def references_proved(cursor, batch_id: int, *, pairs: bool) -> Iterator[bool]:
    """Around an import's insert on PostgreSQL: make the insert itself the proof of its rows' foreign keys, and skip
    the per-row checks where the database allows it; yields whether they are skipped.

    Every row names the import's own batch, whose row is locked here as a per-row check would lock it (it cannot
    be deleted until commit). Pairs (``pairs``) also name a member and a job: the insert joins every staged pair to
    them, so each pair it writes names rows that exist in its snapshot, and locks keep that true until commit: no
    member or job is added, changed or removed meanwhile (``SHARE`` waits for writers in progress and blocks new
    ones; readers and other tables' foreign-key locks go on), and pairs imports run one at a time (``SHARE ROW
    EXCLUSIVE`` on the pairs: reads and references to pairs go on), so no one else inserts a pair this one skips
    as present. With that, the per-row foreign-key triggers (three per pair, run at commit: more than half of a
    large pairs import's time) would only check again what the insert proved. They are skipped for this one
    statement with ``session_replication_role = replica`` where the role may set it (a superuser, or on PostgreSQL
    15+ after ``GRANT SET ON PARAMETER session_replication_role``) and ``IMPORT_SKIP_ROW_FK_CHECKS`` is on;
    otherwise they run as usual. The constraints stay declared, and every other write is checked by them."""
    if not _pg():
        yield False  # SQLite: one writer at a time, and the foreign keys check each row as usual
        return
    if pairs:
        cursor.execute("LOCK TABLE labeling_pair IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("LOCK TABLE labeling_member, labeling_job IN SHARE MODE")
    cursor.execute("SELECT 1 FROM labeling_importbatch WHERE id = %s FOR KEY SHARE", [batch_id])
    skipped = settings.IMPORT_SKIP_ROW_FK_CHECKS and _replica_role(cursor)
    yield skipped  # an error in the insert aborts the (sub)transaction, which undoes the setting too
    if skipped:  # the rest of the transaction is checked as usual
        cursor.execute("SET LOCAL session_replication_role = origin")


def row_checks_skipped() -> bool:
    """Whether imports on this database skip the per-row foreign-key checks (see :func:`references_proved`)."""
    if not _pg() or not settings.IMPORT_SKIP_ROW_FK_CHECKS:
        return False
    with transaction.atomic(), connection.cursor() as cursor:
        skipped = _replica_role(cursor)
        transaction.set_rollback(True)
    return skipped


def _replica_role(cursor) -> bool:
    """Switch this transaction's triggers to the replica role if the database role may; False if not."""
    try:
        with transaction.atomic():  # a savepoint: a refusal leaves the import's transaction usable
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError as error:
        log.info("import: foreign keys checked per row (%s)", str(error).strip().splitlines()[0])
        return False
    return True
