"""Benchmark: the server time of every page and API read, per role, at a million candidates.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ph_pages_bench .venv/bin/python bench/pages.py \\
        [--candidates 1000000] [--reviews 1500] [--calls 3] [--only agreement,gold] [--fresh]

Populates (set-based SQL) one labeling run of ``--candidates`` candidates over as many pairs, a third of them
(333,333 at a million) pending review, ``--reviews`` annotator reviews (two per reviewed item, from six annotators;
one item in twenty disagrees and was adjudicated), one teacher sample per candidate, 1,500 gold labels and a gold
score run on them. The database is kept: a rerun with the same parameters reuses it (migrating it first);
``--fresh`` rebuilds it. Then logs in as each role (policy owner, annotator, ML engineer, admin = staff) with
Django's test client and calls every page and API read ``--calls`` times, printing the median server time (the
request handled in this process, no network), the queries and their database time. Reads over 300 ms are
flagged with ``!``. ``--only`` keeps the URLs containing one of the words. ``--running`` measures them with the
run marked running, as while it labels (restored afterwards): its page's figures are then kept and counted again
by the workers every few seconds, not on each view.
"""

import argparse
import contextlib
import json
import logging
import statistics
import sys
import time

from _common import reset_database

TARGET_MS = 300
PARAMS_TABLE = "bench_pages_params"
ANNOTATORS = 6


def _params_of_database() -> dict | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [PARAMS_TABLE])
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute(f"SELECT params FROM {PARAMS_TABLE}")  # noqa: S608 - a constant
        row = cursor.fetchone()
    return (json.loads(row[0]) if isinstance(row[0], str) else row[0]) if row else None


def populate(candidates: int, reviews: int) -> None:
    """Everything the pages read, inserted with set-based SQL (a few minutes at a million candidates)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from labeling.models import LabelingRun, TeacherConfig
    from policyhub.demo import DEMO_SLUG, demo_seed
    from policyhub.models import Policy

    demo_seed()
    policy = Policy.objects.get(slug=DEMO_SLUG)
    version = policy.versions.get(number=1)
    config = TeacherConfig.objects.get(name="heuristic-baseline")
    User = get_user_model()
    users = {"owner": "policy_owner", "ml": "ml_engineer", **{f"ann{i}": "annotator" for i in range(ANNOTATORS)}}
    for name, role in users.items():
        user = User.objects.create_user(username=f"bench_{name}", password="x")  # noqa: S106
        user.groups.add(Group.objects.get(name=role))
    User.objects.create_user(username="bench_admin", password="x", is_staff=True, is_superuser=True)  # noqa: S106
    annotator_ids = list(
        User.objects.filter(username__startswith="bench_ann").order_by("username").values_list("pk", flat=True)
    )
    owner_id = User.objects.get(username="bench_owner").pk
    run = LabelingRun.objects.create(
        policy_version=version, teacher_config=config, config_snapshot=config.snapshot(), system_prompt="-",
        status="succeeded", pairs_total=candidates, reviewers_per_item=2,
    )  # fmt: skip
    items = reviews // 2  # reviewed items, two reviews each
    started = time.perf_counter()

    def step(what: str, sql: str, params=()) -> None:
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        print(f"  {what}: {time.perf_counter() - t:.0f} s", flush=True)

    members = candidates // 100 + 1
    step("members", "INSERT INTO labeling_member (external_id, headline, skills, seniority, location, summary, "
         "created_at) SELECT 'pm' || lpad(g::text, 7, '0'), 'Data engineer ' || g, '[\"python\", \"sql\"]', "
         "'senior', 'Berlin', 'Builds pipelines.', now() FROM generate_series(1, %s) g", [members])  # fmt: skip
    step("jobs", "INSERT INTO labeling_job (external_id, title, description, required_skills, seniority, location, "
         "created_at) SELECT 'pj' || lpad(g::text, 3, '0'), 'Job ' || g, 'Build data products.', '[\"python\"]', "
         "'mid', 'Berlin', now() FROM generate_series(1, 100) g")  # fmt: skip
    step("pairs", "INSERT INTO labeling_pair (member_id, job_id, created_at) SELECT m.id, j.id, now() "
         "FROM labeling_member m CROSS JOIN labeling_job j WHERE m.external_id LIKE 'pm%%' "
         "AND j.external_id LIKE 'pj%%' ORDER BY m.id, j.id LIMIT %s", [candidates])  # fmt: skip
    # candidate k (1-based, in pair order): k % 3 = 0 pending; else the first `items` of the others were reviewed
    # by two annotators (agreeing, but one in twenty disagreed and was adjudicated); the rest auto-accepted.
    step("candidates", """
        INSERT INTO labeling_candidate (run_id, pair_id, status, label, label_distribution, confidence, vote_share,
          samples_ok, trust, trust_ok, routing, reason_self_disagreement, reason_low_confidence,
          reason_teacher_disagreement, reason_gold_conflict, reason_trust_check_failed, error, updated_at,
          review_state, reviews_needed, reviews_done, approved_label, approved_by, approved_at)
        SELECT %(run)s, p.id, 'labeled', p.lbl, '{}', p.conf, p.conf, 1, '{}', true,
          CASE WHEN p.kind = 'auto' THEN 'auto_accepted' ELSE 'needs_review' END, false, p.kind <> 'auto', false,
          false, false, '', now(),
          CASE p.kind WHEN 'auto' THEN '' WHEN 'pending' THEN 'pending' ELSE 'done' END,
          CASE WHEN p.kind = 'auto' THEN 0 ELSE 2 END,
          CASE WHEN p.kind IN ('reviewed', 'adjudicated') THEN 2 ELSE 0 END,
          CASE p.kind WHEN 'pending' THEN '' WHEN 'reviewed' THEN p.human ELSE p.lbl END,
          CASE p.kind WHEN 'auto' THEN 'teacher' WHEN 'pending' THEN '' WHEN 'reviewed' THEN 'reviewers'
            ELSE 'adjudicator' END,
          CASE WHEN p.kind = 'pending' THEN NULL ELSE now() END
        FROM (
          SELECT q.*, CASE WHEN q.kind = 'adjudicated' THEN q.lbl ELSE
                   (ARRAY['strong_match', 'partial_match', 'no_match'])[1 + (q.k / 3 + (q.k %% 7 = 0)::int) %% 3]
                 END AS human
          FROM (
            SELECT r.*, CASE WHEN r.k %% 3 = 0 THEN 'pending'
                             WHEN r.k - r.k / 3 > %(items)s THEN 'auto'
                             WHEN r.k %% 20 = 1 THEN 'adjudicated' ELSE 'reviewed' END AS kind,
                   (ARRAY['strong_match', 'partial_match', 'no_match'])[1 + (r.k / 3) %% 3] AS lbl,
                   (ARRAY[0.34, 0.5, 0.6, 0.67, 0.75, 0.8, 0.9, 1.0])[1 + r.k %% 8] AS conf
            FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM labeling_pair
                  WHERE member_id IN (SELECT id FROM labeling_member WHERE external_id LIKE 'pm%%')) r
          ) q
        ) p""", {"run": run.pk, "items": items})  # fmt: skip
    step("teacher samples", "INSERT INTO labeling_teachersample (run_id, pair_id, sample_index, label, rationale, "
         "cited_rules, raw_response, input_tokens, output_tokens, latency_ms, attempts, cached, error_kind, error, "
         "created_at) SELECT c.run_id, c.pair_id, 0, c.label, 'Python and SQL appear in the skills (R1, R2).', "
         "CASE WHEN c.id %% 2 = 0 THEN '[\"R1\", \"R2\"]'::jsonb ELSE '[\"R3\"]'::jsonb END, '', 900, 60, 200, 1, "
         "false, '', '', now() FROM labeling_candidate c WHERE c.run_id = %s", [run.pk])  # fmt: skip
    # two annotators per reviewed item, rotating over the six; the adjudicated ones disagree
    step("reviews", """
        INSERT INTO labeling_review (candidate_id, reviewer_id, kind, label, note, created_at)
        SELECT c.id, (%(ann)s::int[])[1 + (c.id + s) %% %(n)s], 'review',
          CASE WHEN c.approved_by = 'adjudicator' AND s = 1 THEN
            CASE c.approved_label WHEN 'no_match' THEN 'strong_match' ELSE 'no_match' END
          ELSE c.approved_label END, '', now() - interval '1 day'
        FROM labeling_candidate c CROSS JOIN generate_series(0, 1) s
        WHERE c.run_id = %(run)s AND c.review_state = 'done'""",
         {"ann": annotator_ids, "n": ANNOTATORS, "run": run.pk})  # fmt: skip
    step("adjudications", "INSERT INTO labeling_review (candidate_id, reviewer_id, kind, label, note, created_at) "
         "SELECT c.id, %s, 'adjudication', c.approved_label, 'R2 decides it.', now() FROM labeling_candidate c "
         "WHERE c.run_id = %s AND c.approved_by = 'adjudicator'", [owner_id, run.pk])  # fmt: skip
    step("gold labels", "INSERT INTO labeling_goldlabel (policy_id, pair_id, label, note, source_candidate_id, "
         "created_by_id, created_at) SELECT %s, c.pair_id, c.approved_label, '', c.id, %s, now() "
         "FROM labeling_candidate c WHERE c.run_id = %s AND c.review_state = 'done' ORDER BY c.id LIMIT 1500",
         [policy.pk, owner_id, run.pk])  # fmt: skip
    step("gold events", "INSERT INTO labeling_goldlabelevent (policy_id, pair_id, action, label, new_label, "
         "source_candidate_id, user_id, reason, created_at) SELECT policy_id, pair_id, 'added', label, '', "
         "source_candidate_id, created_by_id, '', created_at FROM labeling_goldlabel WHERE policy_id = %s",
         [policy.pk])  # fmt: skip
    score = LabelingRun.objects.create(
        policy_version=version, teacher_config=config, config_snapshot=config.snapshot(), system_prompt="-",
        status="succeeded", purpose=LabelingRun.Purpose.GOLD_SCORE, pairs_total=1500,
    )  # fmt: skip
    step("gold score run", "INSERT INTO labeling_candidate (run_id, pair_id, status, label, confidence, samples_ok, "
         "trust_ok, routing, updated_at) SELECT %s, g.pair_id, 'labeled', c.label, c.confidence, 1, true, "
         "'auto_accepted', now() FROM labeling_goldlabel g JOIN labeling_candidate c ON c.id = g.source_candidate_id "
         "WHERE g.policy_id = %s", [score.pk, policy.pk])  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(f"CREATE TABLE {PARAMS_TABLE} (params jsonb)")
        cursor.execute(
            f"INSERT INTO {PARAMS_TABLE} VALUES (%s)",  # noqa: S608 - a constant
            [json.dumps({"candidates": candidates, "reviews": reviews})],
        )
    print(f"populated in {time.perf_counter() - started:.0f} s", flush=True)


def reads(only: list[str]) -> list[str]:
    """Every page and API read (GET) with its parameters filled in from the populated data."""
    from labeling.models import Candidate, LabelingRun, Review
    from policyhub.api_root import api
    from policyhub.demo import DEMO_SLUG

    run = LabelingRun.objects.filter(purpose="labeling", pairs_total__gt=100).order_by("-pk").first()
    score = LabelingRun.objects.filter(purpose="gold_score").order_by("-pk").first()
    adjudicated = Review.objects.filter(kind="adjudication").order_by("pk").values_list("candidate_id", flat=True)
    slug, r = DEMO_SLUG, run.pk
    # the candidate table's last pages: read after an id near the end (keyset), as its "next" links do
    deep = Candidate.objects.filter(run=run, routing="needs_review").order_by("-id").values_list("id", flat=True)[60]
    pages = [
        "/", f"/policies/{slug}/", f"/policies/{slug}/compare/", f"/policies/{slug}/v1/",
        f"/policies/{slug}/v1/prompt/", f"/policies/{slug}/draft/", "/imports/", "/teachers/", "/runs/",
        "/runs/new/", f"/runs/{r}/",
        f"/runs/{r}/candidates/", f"/runs/{r}/candidates/?after={deep}", f"/runs/{r}/agreement/",
        f"/policies/{slug}/v1/agreement/", f"/policies/{slug}/trends/", "/account/labelstudio/", "/review/",
        "/review/adjudication/", f"/policies/{slug}/feedback/", f"/runs/{r}/gold/", f"/policies/{slug}/gold/",
        f"/policies/{slug}/gold/score/", f"/policies/{slug}/gold/score/{score.pk}/",
        f"/policies/{slug}/draft/gold-preview/", f"/policies/{slug}/redteam/", f"/policies/{slug}/gates/",
        "/students/", "/exports/", "/exports/new/", "/account/tokens/",
    ]  # fmt: skip
    values = {"slug": slug, "number": "1", "run_id": str(r), "version": "1"}
    apis = []
    for path, methods in api.get_openapi_schema()["paths"].items():
        if "get" not in methods or path.endswith(("/archive", "/download")) or "openapi" in path:
            continue
        filled = path
        for name, value in values.items():
            filled = filled.replace("{" + name + "}", value)
        if "{" not in filled:
            apis.append(filled)
    apis.append(f"/api/runs/{r}/candidates?routing=needs_review&after={deep}")
    if adjudicated:
        apis.append(f"/api/runs/{r}/candidates?review_state=done")
    urls = pages + apis
    return [url for url in urls if not only or any(word in url for word in only)]


ROLES = {"owner": "bench_owner", "annotator": "bench_ann0", "ml_engineer": "bench_ml", "admin": "bench_admin"}


def measure(urls: list[str], calls: int, roles: list[str]) -> list[tuple]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    results = []
    for role in roles:
        username = ROLES[role]
        client = Client(raise_request_exception=False)  # a failing read is reported (500), the others still run
        client.force_login(get_user_model().objects.get(username=username))
        print(f"\n{role} ({username})", flush=True)
        for url in urls:
            times, db_times, counts, status = [], [], [], None
            for _ in range(calls):
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = client.get(url)
                    if getattr(response, "streaming", False):
                        b"".join(response.streaming_content)
                    times.append((time.perf_counter() - started) * 1000)
                status = response.status_code
                counts.append(len(captured.captured_queries))
                db_times.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
            ms = statistics.median(times)
            flag = "!" if ms > TARGET_MS and status == 200 else " "
            print(f" {flag} {ms:7.0f} ms  db {statistics.median(db_times):6.0f} ms  {max(counts):3d} queries  "
                  f"{status}  {url}", flush=True)  # fmt: skip
            results.append((role, url, status, ms, max(counts)))
    return results


@contextlib.contextmanager
def _running(running: bool):
    """The populated run marked running for the measurements (``--running``), then as it was."""
    from labeling.models import LabelingRun

    if not running:
        yield
        return
    run = LabelingRun.objects.filter(purpose="labeling", pairs_total__gt=100).order_by("-pk").first()
    LabelingRun.objects.filter(pk=run.pk).update(status=LabelingRun.Status.RUNNING, finished_at=None)
    print(f"run #{run.pk} marked running for the measurements", flush=True)
    try:
        yield
    finally:
        LabelingRun.objects.filter(pk=run.pk).update(status=run.status, finished_at=run.finished_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--reviews", type=int, default=1500)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated words: only the URLs containing one")
    parser.add_argument("--roles", default=",".join(ROLES), help=f"comma-separated, of {', '.join(ROLES)}")
    parser.add_argument("--fresh", action="store_true", help="rebuild the database even if it matches")
    parser.add_argument("--running", action="store_true", help="measure with the run marked running")
    args = parser.parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if "bench" not in settings.DATABASES["default"]["NAME"]:
        sys.exit("use a database whose name contains 'bench' (DATABASE_URL): this one is dropped and rebuilt")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    wanted = {"candidates": args.candidates, "reviews": args.reviews}
    try:
        have = _params_of_database()
    except Exception:  # noqa: BLE001 - no database yet
        have = None
    if have == wanted and not args.fresh:
        call_command("migrate", verbosity=0)
        print(f"reusing the populated database ({have})")
    else:
        from django.db import connections

        connections.close_all()  # the database is dropped WITH (FORCE): not under this connection
        reset_database()
        print(f"populating {args.candidates:,} candidates, {args.reviews:,} reviews", flush=True)
        populate(args.candidates, args.reviews)
    import krippendorff  # noqa: F401 - loaded once per web process; not a page's cost
    import sklearn.metrics  # noqa: F401

    for name in ("django.request", "django.security", "axes"):  # the 403s and logins are expected: not news
        logging.getLogger(name).setLevel(logging.CRITICAL)
    with _running(args.running):
        results = measure(reads([w for w in args.only.split(",") if w]), args.calls, args.roles.split(","))
    slow = [r for r in results if r[3] > TARGET_MS and r[2] == 200]
    print(
        f"\n{len(results)} reads, {len(slow)} over {TARGET_MS} ms"
        + "".join(f"\n  {r[3]:.0f} ms {r[0]} {r[1]}" for r in slow)
    )


if __name__ == "__main__":
    main()
