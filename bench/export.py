"""Benchmark: export approved labels to JSONL and Parquet, against the raw ``COPY … TO STDOUT`` floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/policyhub_bench .venv/bin/python bench/export.py \\
        [--sizes 100000,1000000]

Generates one labeling run per size (the larger run's pairs include the smaller's): every candidate approved, 3 %
of them by a human review, one teacher sample each with a rationale and cited rules, realistic member and job text.
For each size, each stage runs in a fresh process so its peak RSS is its own:

- floor: ``COPY (SELECT <the export's columns>) TO STDOUT`` through psycopg 3 (the same selection, joins, order);
- labels.jsonl: the export's writer (the database writes each row's JSON text, split included; Python copies it);
- labels.parquet: labels.jsonl plus its conversion to Parquet (a Parquet file needs the rows read first, so its
  throughput counts both);
- openai_chat.jsonl: from labels.jsonl (no target; reported for completeness).

Targets: JSONL ≥ 50 % and Parquet ≥ 30 % of the floor's rows/s; peak RSS < 300 MB at any size.
"""

import argparse
import multiprocessing
import queue
import sys
import tempfile
import time
from pathlib import Path

from _common import reset_database

LOREM = (
    "We build data products for a professional network: pipelines, APIs and the tools around them. You will own "
    "services end to end, pair with product and design, and mentor others. Remote-friendly, hybrid in the office."
)


def populate(largest: int, sizes: list[int]) -> list[int]:
    from django.db import connection

    from labeling.models import LabelingRun, TeacherConfig
    from policyhub.demo import DEMO_SLUG, demo_seed
    from policyhub.models import Policy

    demo_seed()
    version = Policy.objects.get(slug=DEMO_SLUG).versions.get(number=1)
    config = TeacherConfig.objects.get(name="heuristic-baseline")
    jobs, per_member = 1000, 10
    members = largest // per_member + 1
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO labeling_member (external_id, headline, skills, seniority, location, summary, created_at) "
            "SELECT 'bm' || lpad(g::text, 8, '0'), 'Senior data engineer ' || g, "
            '\'["python", "sql", "airflow", "dbt", "kafka"]\', \'senior\', \'Berlin\', '
            "'Builds batch and streaming pipelines; leads a team of four.', now() FROM generate_series(1, %s) g",
            [members],
        )
        cursor.execute(
            "INSERT INTO labeling_job (external_id, title, description, required_skills, seniority, location, "
            "created_at) SELECT 'bj' || lpad(g::text, 5, '0'), 'Data engineer ' || g, %s, "
            "'[\"python\", \"sql\", \"airflow\"]', 'mid', 'Berlin', now() FROM generate_series(1, %s) g",
            [LOREM, jobs],
        )
        cursor.execute(
            "INSERT INTO labeling_pair (member_id, job_id, created_at) "
            "SELECT m.id, j.first + (m.id * 7 + k) %% %s, now() FROM labeling_member m "
            "CROSS JOIN generate_series(0, %s) k "
            "CROSS JOIN (SELECT MIN(id) AS first FROM labeling_job WHERE external_id LIKE 'bj%%') j "
            "WHERE m.external_id LIKE 'bm%%' ORDER BY m.id, k LIMIT %s",
            [jobs, per_member - 1, largest],
        )
        run_ids = []
        for size in sorted(sizes):
            run = LabelingRun.objects.create(
                policy_version=version, teacher_config=config, config_snapshot=config.snapshot(),
                system_prompt="-", status="succeeded", pairs_total=size,
            )  # fmt: skip
            run_ids.append(run.pk)
            cursor.execute(
                "INSERT INTO labeling_candidate (run_id, pair_id, status, label, label_distribution, confidence, "
                "vote_share, samples_ok, trust, trust_ok, routing, reason_self_disagreement, reason_low_confidence, "
                "reason_teacher_disagreement, reason_gold_conflict, reason_trust_check_failed, error, updated_at, "
                "review_state, reviews_needed, reviews_done, approved_label, approved_by, approved_at) "
                "SELECT %s, p.id, 'labeled', lbl, "
                "  jsonb_build_object('strong_match', 0.7, 'partial_match', 0.2, 'no_match', 0.1), 0.7, 0.7, 1, "
                "  '{}', true, CASE WHEN p.id %% 33 = 0 THEN 'needs_review' ELSE 'auto_accepted' END, "
                "  false, p.id %% 33 = 0, false, false, false, '', now(), "
                "  CASE WHEN p.id %% 33 = 0 THEN 'done' ELSE '' END, CASE WHEN p.id %% 33 = 0 THEN 1 ELSE 0 END, "
                "  CASE WHEN p.id %% 33 = 0 THEN 1 ELSE 0 END, lbl, "
                "  CASE WHEN p.id %% 33 = 0 THEN 'reviewers' ELSE 'teacher' END, now() "
                "FROM (SELECT id, (ARRAY['strong_match', 'partial_match', 'no_match'])[1 + id %% 3] AS lbl "
                "      FROM labeling_pair ORDER BY id LIMIT %s) p",
                [run.pk, size],
            )
            cursor.execute(
                "INSERT INTO labeling_teachersample (run_id, pair_id, sample_index, label, rationale, cited_rules, "
                "raw_response, input_tokens, output_tokens, latency_ms, attempts, cached, error_kind, error, "
                "created_at) SELECT c.run_id, c.pair_id, 0, c.label, "
                "'Python and SQL appear in the member''s skills; seniority differs by one level (R1, R2).', "
                "'[\"R1\", \"R2\"]', '', 900, 60, 200, 1, false, '', '', now() "
                "FROM labeling_candidate c WHERE c.run_id = %s",
                [run.pk],
            )
        cursor.execute("ANALYZE")
    return run_ids


def _stage(name: str, version_id: int, run_id: int, folder: str, result) -> None:
    import django

    django.setup()
    from django.db import connection
    from psycopg import ClientCursor

    from exports import selection, services
    from exports.writers import labels_jsonl, labels_parquet, openai_chat
    from policyhub.models import PolicyVersion

    version = PolicyVersion.objects.get(pk=version_id)
    filters, folder = selection.Filters(), Path(folder)
    start = time.perf_counter()
    if name == "floor":
        query = selection.floor_query(version, [run_id], filters)
        connection.ensure_connection()
        raw = connection.connection
        sql = ClientCursor(raw).mogrify(query.sql, query.params)
        rows = 0
        with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT") as copy:
            for block in copy:
                rows += bytes(block).count(b"\n")
    elif name == "jsonl":
        stream = services._stream_lines(selection.rows_query(version, [run_id], filters, selection.SplitRecipe()))
        rows = labels_jsonl.write(stream, folder / "labels.jsonl")
    elif name == "parquet":
        rows, _tally = labels_parquet.write(
            folder / "labels.jsonl", folder / "labels.parquet", labels=version.label_keys
        )
    else:
        rows = openai_chat.write(folder / "labels.jsonl", folder / "openai_chat.jsonl", system_prompt="-" * 2000)
    seconds = time.perf_counter() - start
    import resource

    result.put((rows, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_stage(name: str, version_id: int, run_id: int, folder: str) -> tuple[int, float, float]:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    process = context.Process(target=_stage, args=(name, version_id, run_id, folder, result))
    process.start()
    try:
        while True:
            try:
                return result.get(timeout=1)
            except queue.Empty:
                if not process.is_alive():  # it died (killed, out of memory) without its figures: say so, not hang
                    sys.exit(f"the {name} stage exited with code {process.exitcode} before reporting its figures")
    finally:  # the figures are in hand; a stage that will not exit must not hide them
        process.join(30)
        if process.is_alive():
            print(f"the {name} stage (pid {process.pid}) did not exit; killing it", file=sys.stderr)
            process.kill()
            process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    reset_database()
    started = time.perf_counter()
    run_ids = populate(max(sizes), sizes)
    print(f"populated {max(sizes):,} approved candidates in {time.perf_counter() - started:.0f} s")
    from policyhub.demo import DEMO_SLUG
    from policyhub.models import Policy

    version_id = Policy.objects.get(slug=DEMO_SLUG).versions.get(number=1).pk
    for size, run_id in zip(sizes, run_ids, strict=True):
        with tempfile.TemporaryDirectory(prefix="export-bench-") as folder:
            floor = run_stage("floor", version_id, run_id, folder)
            jsonl = run_stage("jsonl", version_id, run_id, folder)
            parquet = run_stage("parquet", version_id, run_id, folder)
            chat = run_stage("chat", version_id, run_id, folder)
            sizes_mb = {p.name: p.stat().st_size / 1e6 for p in Path(folder).iterdir()}
        floor_rate = floor[0] / floor[1]
        print(f"\n{size:,} rows")
        print(f"  floor COPY TO STDOUT   {floor[1]:6.1f} s  {floor_rate:9,.0f} rows/s  peak RSS {floor[2]:5.0f} MB")
        for label, (rows, seconds, rss), extra in (
            ("labels.jsonl", jsonl, 0.0),
            ("labels.parquet", parquet, jsonl[1]),
            ("openai_chat.jsonl", chat, jsonl[1]),
        ):
            total = seconds + extra
            rate = rows / total
            print(f"  {label:<22} {total:6.1f} s  {rate:9,.0f} rows/s  {rate / floor_rate:6.1%} of the floor  "
                  f"peak RSS {rss:5.0f} MB  {sizes_mb.get(label, 0):7.1f} MB on disk")  # fmt: skip
    print("\ntargets: JSONL >= 50 % and Parquet >= 30 % of the floor; peak RSS < 300 MB at every size")


if __name__ == "__main__":
    main()
