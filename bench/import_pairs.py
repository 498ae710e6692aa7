"""Benchmark: import 1,000,000 pairs (with their members and jobs) into PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/policyhub_bench .venv/bin/python bench/import_pairs.py [--pairs N]

The database named by DATABASE_URL is dropped and re-created (refuses names not containing "bench"). Prints
rows/s per file, total wall time against the 60 s target and the peak RSS of this process.
"""

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

from _common import peak_rss_mb, reset_database

SKILLS = [f"skill{i}" for i in range(500)]
SENIORITY = ["junior", "mid", "senior", "staff", ""]


def write_files(folder: Path, pairs: int) -> dict[str, Path]:
    members, jobs = max(pairs // 10, 1), max(pairs // 50, 1)
    rng = random.Random(7)  # noqa: S311 - synthetic data, not security
    paths = {kind: folder / f"{kind}.csv" for kind in ("members", "jobs", "pairs")}
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
        w.writerow(["member_id", "job_id"])
        for i in range(pairs):  # each (member, job) once: member i % members with job (i // members) spread
            w.writerow([f"m{i % members}", f"j{(i // members + i * 7) % jobs}"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    args = parser.parse_args()
    reset_database()
    from labeling.models import Pair
    from labeling.services import import_file

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(Path(tmp), args.pairs)
        total_start = time.perf_counter()
        for kind, path in paths.items():
            start = time.perf_counter()
            with path.open("rb") as stream:
                result = import_file(kind=kind, stream=stream, name=path.name)
            elapsed = time.perf_counter() - start
            if not result.ok:
                sys.exit(f"{kind} import failed: {result.summary()} {result.batch.errors[:5]}")
            rows = result.batch.rows_created
            size_mb = path.stat().st_size / 1e6
            print(f"{kind:8} {rows:>9,} rows in {elapsed:6.1f} s = {rows / elapsed:>9,.0f} rows/s ({size_mb:.0f} MB)")
        total = time.perf_counter() - total_start
    peak_mb = peak_rss_mb()
    assert Pair.objects.count() == args.pairs
    print(
        f"total    {total:6.1f} s for {args.pairs:,} pairs with their members and jobs (target < 60 s): "
        f"{'OK' if total < 60 else 'MISSED'}"
    )
    print(f"peak RSS {peak_mb:6.0f} MB")


if __name__ == "__main__":
    main()
