"""Benchmark: 16 annotators claiming and submitting review items for 60 s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/policyhub_bench .venv/bin/python bench/review_claim.py \\
        [--candidates 1000000] [--needs-review 300000] [--annotators 16] [--seconds 60]

Sets up a run with --candidates candidates (pairs and all, generated in SQL), --needs-review of them pending
review, then runs --annotators processes (one connection each, as web workers would) that claim the next item
and submit a label in a loop. Prints claim latency p50/p95/p99, reviews per second, and checks that no item was
claimed twice.
"""

import argparse
import multiprocessing
import statistics
import time
from collections import Counter

from _common import reset_database


def populate(candidates: int, needs_review: int):
    from django.db import connection

    from labeling.models import LabelingRun, TeacherConfig
    from policyhub.demo import DEMO_SLUG, demo_seed
    from policyhub.models import Policy

    demo_seed()
    version = Policy.objects.get(slug=DEMO_SLUG).versions.get(number=1)
    config = TeacherConfig.objects.get(name="heuristic-baseline")
    run = LabelingRun.objects.create(
        policy_version=version, teacher_config=config, config_snapshot=config.snapshot(), system_prompt="-",
        status="succeeded", pairs_total=candidates,
    )  # fmt: skip
    members = max(1, candidates // 100)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO labeling_member (external_id, headline, skills, seniority, location, summary, created_at) "
            "SELECT 'bm' || g, 'Member ' || g, '[]', '', '', '', now() FROM generate_series(1, %s) g",
            [members],
        )
        cursor.execute(
            "INSERT INTO labeling_job (external_id, title, description, required_skills, seniority, location, "
            "created_at) SELECT 'bj' || g, 'Job ' || g, 'Work', '[]', '', '', now() FROM generate_series(1, 100) g"
        )
        cursor.execute(
            "INSERT INTO labeling_pair (member_id, job_id, created_at) SELECT m.id, j.id, now() "
            "FROM labeling_member m CROSS JOIN labeling_job j WHERE m.external_id LIKE 'bm%%' "
            "AND j.external_id LIKE 'bj%%' LIMIT %s",
            [candidates],
        )
        cursor.execute(
            "INSERT INTO labeling_candidate (run_id, pair_id, status, label, label_distribution, samples_ok, trust, "
            "trust_ok, routing, reason_self_disagreement, reason_low_confidence, reason_teacher_disagreement, "
            "reason_gold_conflict, reason_trust_check_failed, error, updated_at, review_state, reviews_needed, "
            "reviews_done, approved_label, approved_by) "
            "SELECT %s, p.id, 'labeled', 'strong_match', '{}', 1, '{}', true, "
            "CASE WHEN row_number() OVER (ORDER BY p.id) %% %s = 0 THEN 'needs_review' ELSE 'auto_accepted' END, "
            "false, true, false, false, false, '', now(), "
            "CASE WHEN row_number() OVER (ORDER BY p.id) %% %s = 0 THEN 'pending' ELSE '' END, 1, 0, '', '' "
            "FROM labeling_pair p JOIN labeling_member m ON m.id = p.member_id WHERE m.external_id LIKE 'bm%%'",
            [run.pk, round(candidates / needs_review) or 1, round(candidates / needs_review) or 1],
        )
        cursor.execute("ANALYZE labeling_candidate")
        cursor.execute("SELECT count(*) FROM labeling_candidate WHERE review_state = 'pending'")
        pending = cursor.fetchone()[0]
    return run, pending


def annotate(user_id: int, stop_at: float):
    """One annotator (its own process and connection): claim, submit, repeat until ``stop_at``."""
    from django.contrib.auth import get_user_model

    from labeling.services import review_claim_next, review_submit

    user = get_user_model().objects.get(pk=user_id)
    mine, latencies, errors = [], [], []
    time.sleep(max(0.0, stop_at - time.time() - BENCH_SECONDS))  # start together
    try:
        while time.time() < stop_at:
            started = time.perf_counter()
            item = review_claim_next(user=user)
            latencies.append(time.perf_counter() - started)
            if item is None:
                break
            mine.append(item.pk)
            review_submit(user=user, candidate_id=item.pk, label="no_match")
    except Exception as error:  # noqa: BLE001 - reported by the parent
        errors.append(repr(error))
    return mine, latencies, errors


BENCH_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--needs-review", type=int, default=300_000)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    global BENCH_SECONDS  # noqa: PLW0603 - read by the forked annotator processes
    BENCH_SECONDS = args.seconds
    reset_database()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from labeling.models import Review

    started = time.perf_counter()
    run, pending = populate(args.candidates, args.needs_review)
    print(
        f"set up {args.candidates:,} candidates, {pending:,} pending review, in {time.perf_counter() - started:.0f} s"
    )
    group = Group.objects.get(name="annotator")
    users = []
    for i in range(args.annotators):
        user = get_user_model().objects.create_user(username=f"bench{i}", password="x")  # noqa: S106
        user.groups.add(group)
        users.append(user)

    from django.db import connections

    connections.close_all()  # each annotator process opens its own connection
    stop_at = time.time() + 2 + args.seconds
    context = multiprocessing.get_context("fork")
    with context.Pool(args.annotators) as pool:
        t0 = time.perf_counter()
        results = pool.starmap(annotate, [(user.pk, stop_at) for user in users])
        elapsed = time.perf_counter() - t0 - 2
    claims = [pk for mine, _, _ in results for pk in mine]
    latencies = [lat for _, lats, _ in results for lat in lats]
    errors = [error for _, _, errs in results for error in errs]
    doubles = sum(1 for n in Counter(claims).values() if n > 1)
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"{args.annotators} annotators for {elapsed:.0f} s: {len(claims):,} items reviewed = "
          f"{len(claims) / elapsed:,.0f} reviews/s")  # fmt: skip
    print(f"claim latency p50 {quantiles[49] * 1000:.1f} ms, p95 {quantiles[94] * 1000:.1f} ms, "
          f"p99 {quantiles[98] * 1000:.1f} ms (target p95 < 20 ms): "
          f"{'OK' if quantiles[94] < 0.020 else 'MISSED'}")  # fmt: skip
    print(f"double claims: {doubles} (target 0); reviews stored: {Review.objects.count():,}; errors: {errors[:3]}")


if __name__ == "__main__":
    main()
