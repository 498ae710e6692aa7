"""Benchmark: import 1,000,000 pairs (with their members and jobs) into PostgreSQL, against the floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/policyhub_bench .venv/bin/python bench/import_pairs.py \
        [--pairs N] [--pairs-format csv|jsonl]

The database named by DATABASE_URL is dropped and re-created (refuses names not containing "bench"). Prints, per
file, rows/s, wall time and CPU time (this process, and the PostgreSQL backend serving it when the server runs on
this machine) and the WAL the server wrote meanwhile (a measure of its work that the machine's speed does not
move); whether the per-row foreign-key checks were skipped (``IMPORT_SKIP_ROW_FK_CHECKS``, README
*Imports*); the total against the 10 s target; the floor, a plain ``COPY`` of the same raw pairs file into an
unlogged table without checks, indexes or constraints, and the import's ratio to it; the peak RSS of this process.
The figures are printed even when the clean-up fails.
"""

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

from _common import peak_rss_mb, reset_database, tree_cpu_seconds

SKILLS = [f"skill{i}" for i in range(500)]
SENIORITY = ["junior", "mid", "senior", "staff", ""]
TARGET_SECONDS = 10


def write_files(folder: Path, pairs: int, pairs_format: str = "csv") -> dict[str, Path]:
    members, jobs = max(pairs // 10, 1), max(pairs // 50, 1)
    rng = random.Random(7)  # noqa: S311 - synthetic data, not security
    paths = {kind: folder / f"{kind}.csv" for kind in ("members", "jobs", "pairs")}
    paths["pairs"] = folder / f"pairs.{pairs_format}"
    with paths["members"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["member_id", "headline", "skills", "seniority", "location", "summary"])
        for i in range(members):
            w.writerow([f"m{i}", f"Engineer {i}", ";".join(rng.sample(SKILLS, 5)), rng.choice(SENIORITY), "Berlin", ""])
    with paths["jobs"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["job_id", "title", "description", "required_skills", "seniority", "location"])
        for i in range(jobs):
            w.writerow([f"j{i}", f"Job {i}", "Build things.", ";".join(rng.sample(SKILLS, 3)), "senior", "Remote"])
    with paths["pairs"].open("w", newline="") as f:
        w = csv.writer(f)
        if pairs_format == "csv":
            w.writerow(["member_id", "job_id"])
        for i in range(pairs):  # each (member, job) once: member i % members with job (i // members) spread
            member, job = f"m{i % members}", f"j{(i // members + i * 7) % jobs}"
            if pairs_format == "csv":
                w.writerow([member, job])
            else:
                f.write(f'{{"member_id": "{member}", "job_id": "{job}"}}\n')
    return paths


class Clock:
    """Wall time, this process's CPU time and the CPU time of the database backend serving Django's connection
    (None when the server is not on this machine: its /proc entry is not ours to read). Parallel query workers
    are not counted."""

    def __init__(self):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backend = cursor.fetchone()[0]

    def backend_cpu(self) -> float | None:
        seconds = tree_cpu_seconds(self.backend)
        return seconds or None

    @staticmethod
    def wal_position() -> int:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
            return int(cursor.fetchone()[0])

    def __enter__(self):
        self.wal = self.wal_position()
        self.wall, self.cpu, self.db = time.perf_counter(), time.process_time(), self.backend_cpu()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        db = self.backend_cpu()
        self.db = db - self.db if db is not None and self.db is not None else None
        self.wal = self.wal_position() - self.wal

    def __str__(self) -> str:
        db = f"{self.db:5.1f} s" if self.db is not None else "  n/a"
        return f"{self.wall:6.1f} s wall, CPU {self.cpu:5.1f} s here + {db} in PostgreSQL, WAL {self.wal / 1e6:4.0f} MB"


FLOOR_TABLE = "bench_import_floor"


def copy_floor(path: Path) -> Clock:
    """The floor: the raw pairs file streamed into an unlogged table by COPY, parsed by PostgreSQL, no checks (a
    JSONL file a line per row, as text: the bench's lines hold no backslash or tab)."""
    from django.db import connection, transaction

    jsonl = path.suffix == ".jsonl"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        columns = "(line text)" if jsonl else "(member_id text, job_id text)"
        cursor.execute(f"CREATE UNLOGGED TABLE {FLOOR_TABLE} {columns}")
    sql = f"COPY {FLOOR_TABLE} FROM STDIN ({'FORMAT text' if jsonl else 'FORMAT csv, HEADER'})"
    with (
        Clock() as clock,
        transaction.atomic(),
        connection.cursor() as cursor,
        path.open("rb") as f,
        cursor.cursor.copy(sql) as copy,
    ):
        while chunk := f.read(1 << 20):
            copy.write(chunk)
    return clock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--pairs-format", choices=("csv", "jsonl"), default="csv", help="The pairs file's format.")
    args = parser.parse_args()
    reset_database()
    from django.db import connection

    from labeling.imports.staging import row_checks_skipped
    from labeling.models import Pair
    from labeling.services import import_file

    skipped = row_checks_skipped()
    lines: list[str] = [
        "foreign keys: proved by each insert, per-row checks skipped"
        if skipped
        else "foreign keys: checked per row (IMPORT_SKIP_ROW_FK_CHECKS=0, or the role may not set the replica role)"
    ]
    tmp = tempfile.TemporaryDirectory()
    try:
        paths = write_files(Path(tmp.name), args.pairs, args.pairs_format)
        total, clocks = {"wall": 0.0, "cpu": 0.0, "db": 0.0, "wal": 0.0}, {}
        for kind, path in paths.items():
            with Clock() as clock, path.open("rb") as stream:
                result = import_file(kind=kind, stream=stream, name=path.name)
            if not result.ok:
                sys.exit(f"{kind} import failed: {result.summary()} {result.batch.errors[:5]}")
            rows, size_mb = result.batch.rows_created, path.stat().st_size / 1e6
            lines.append(f"{kind:8} {rows:>9,} rows ({size_mb:3.0f} MB) {rows / clock.wall:>9,.0f} rows/s: {clock}")
            total, clocks[kind] = {k: total[k] + (getattr(clock, k) or 0) for k in total}, clock
        assert Pair.objects.count() == args.pairs
        verdict = "OK" if total["wall"] <= TARGET_SECONDS else "MISSED"
        lines.append(
            f"total    {total['wall']:6.1f} s wall, CPU {total['cpu']:5.1f} s here + {total['db']:5.1f} s in "
            f"PostgreSQL, WAL {total['wal'] / 1e6:4.0f} MB, for {args.pairs:,} pairs with their members and jobs "
            f"(target <= {TARGET_SECONDS} s): {verdict}"
        )
        floor = copy_floor(paths["pairs"])
        lines.append(f"floor    {floor} (COPY of the raw pairs file into an unlogged table)")
        ratio_db = f", CPU {(total['cpu'] + total['db']) / (floor.cpu + floor.db):.0f}x" if floor.db else ""
        lines.append(
            f"ratio    the whole import takes {total['wall'] / floor.wall:.0f}x the floor's wall time{ratio_db}; "
            f"the pairs file alone {clocks['pairs'].wall / floor.wall:.0f}x"
        )
    finally:
        lines.append(f"peak RSS {peak_rss_mb():6.0f} MB")
        print("\n".join(lines), flush=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
            tmp.cleanup()
        except Exception as error:  # the figures are out already; say what was left behind
            print(f"clean-up failed: {error!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
