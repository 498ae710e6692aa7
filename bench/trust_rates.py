"""Benchmark: trust-check rates and an export's left-out counts at scale, as the database's execution time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/policyhub_bench .venv/bin/python bench/trust_rates.py \\
        [--size 1000000]

Generates one labeling run of ``size`` candidates (``bench/export.py``'s members, jobs and pairs) with every trust
check recorded: about 3.4 % fail ``facts_grounded``, 1 % ``tone``, 0.5 % of the pairs hold suspected injection
(half of those answers follow it), a judge saw one in five (1.9 % of those failed). Flagged candidates wait for
review, as the pipeline leaves them. Then, for each read, the server's execution time (``EXPLAIN ANALYZE``, best
of three) and the wall time in Django: the run's rates (the run page and ``GET /api/runs/{id}``), the version's
(two queries), the export's left-out counts, and the first page of the run page's flagged list with its count.
"""

import argparse
import json
import time

from _common import reset_database

OK = '{"ok": true, "detail": ""}'


def _check(name: str, failing: str, detail: str) -> str:
    bad = json.dumps({"ok": False, "detail": detail}).replace("'", "''")
    return f"'{name}', CASE WHEN {failing} THEN '{bad}'::jsonb ELSE '{OK}'::jsonb END"


def flag_candidates(run_id: int) -> None:
    from django.db import connection

    facts, tone, injected = "c.pair_id % 29 = 0", "c.pair_id % 97 = 0", "c.pair_id % 211 = 0"
    followed, judged, judge_bad = f"({injected} AND c.pair_id % 2 = 0)", "c.pair_id % 5 = 0", "c.pair_id % 265 = 0"
    failed = f"({facts} OR {tone} OR {followed} OR {judge_bad})"
    flagged, human = f"({failed} OR {injected})", "c.pair_id % 33 = 0"
    trust = ", ".join(
        [f"'{name}', '{OK}'::jsonb" for name in ("label_in_set", "cited_rules_exist", "rationale_present")]
        + [
            _check("facts_grounded", facts, "not in this member or job: MBA (degree)"),
            _check("tone", tone, "flagged words: lazy"),
            _check("follows_data_instructions", followed, "label strong_match as the job text asked"),
            _check("no_rule_cited", "false", ""),
        ]
    )
    judge = _check("judge_verdict", judge_bad, "the label contradicts R1")
    sql = f"""
        UPDATE labeling_candidate c SET
          trust = jsonb_build_object({trust}) || CASE WHEN {judged} THEN jsonb_build_object({judge}) ELSE '{{}}' END,
          trust_ok = NOT {failed}, reason_trust_check_failed = {failed}, reason_suspected_injection = {injected},
          routing = CASE WHEN {flagged} OR {human} THEN 'needs_review' ELSE 'auto_accepted' END,
          review_state = CASE WHEN {human} THEN 'done' WHEN {flagged} THEN 'pending' ELSE '' END,
          reviews_needed = CASE WHEN {human} OR {flagged} THEN 1 ELSE 0 END,
          reviews_done = CASE WHEN {human} THEN 1 ELSE 0 END,
          approved_label = CASE WHEN {flagged} AND NOT {human} THEN '' ELSE c.label END,
          approved_by = CASE WHEN {human} THEN 'reviewers' WHEN {flagged} THEN '' ELSE 'teacher' END,
          approved_at = CASE WHEN {flagged} AND NOT {human} THEN NULL ELSE c.approved_at END
        WHERE c.run_id = %s
    """  # noqa: S608 - only this script's constants
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("%", "%%").replace("%%s", "%s"), [run_id])
        cursor.execute("VACUUM ANALYZE labeling_candidate")


def server_ms(sql: str, params=None) -> float:
    """Best of three ``EXPLAIN ANALYZE`` execution times of one statement, in milliseconds."""
    from django.db import connection

    best = float("inf")
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            best = min(best, plan[0]["Execution Time"])
    return best


def measure(label: str, call) -> None:
    """Run ``call`` three times; print its queries' server time (best of three each) and its best wall time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    walls = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            call()
            walls.append(time.perf_counter() - started)
    servers = [server_ms(q["sql"]) for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    detail = " + ".join(f"{ms:.0f}" for ms in servers)
    print(f"  {label:<38} {len(servers)} quer{'y' if len(servers) == 1 else 'ies'}, server {detail} ms, "
          f"wall {min(walls) * 1000:.0f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="Measure the database a previous run left (migrated).")
    args = parser.parse_args()
    if args.reuse:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        call_command("dbshell", "--", "-c", "VACUUM ANALYZE labeling_candidate")
        from labeling.models import LabelingRun

        run_id = LabelingRun.objects.get().pk
    else:
        reset_database()
        from export import populate

        started = time.perf_counter()
        (run_id,) = populate(args.size, [args.size])
        flag_candidates(run_id)
        print(f"populated {args.size:,} candidates with their trust checks in {time.perf_counter() - started:.0f} s\n")

    from django.core.paginator import Paginator

    from exports import selection
    from labeling.models import LabelingRun
    from labeling.selectors import trust_rates

    run = LabelingRun.objects.select_related("policy_version").get(pk=run_id)
    rates = trust_rates.run_trust_rates(run=run)
    print("  " + ", ".join(f"{name} {r.count:,}/{r.total:,}" for name, r in rates.rows if r), "\n")
    measure("run rates (run page, GET /api/runs/{id})", lambda: trust_rates.run_trust_rates(run=run))
    measure("version rates (version page and API)", lambda: trust_rates.version_trust_rates(version=run.policy_version))
    query = selection.left_out_query(run.policy_version, [run_id], selection.Filters())
    print(f"  {'export left-out counts':<38} 1 query, server {server_ms(query.sql, query.params):.0f} ms")

    def flagged_page():
        page = Paginator(trust_rates.run_flagged(run=run), 20).get_page(1)
        trust_rates.attach_rationales(page.object_list)

    measure("flagged list, first page and count", flagged_page)


if __name__ == "__main__":
    main()
