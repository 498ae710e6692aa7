"""Benchmark: K samples for the price of one prompt. The same 2,000 pairs with K = 5 labelled twice against the
fake OpenAI server (200 ms latency): one request per sample, as before (the config remembers that its endpoint
refuses ``n > 1``), and one request per pair with ``n = K``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/policyhub_bench \\
        CELERY_BROKER_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/teacher_cost.py [--pairs 2000] [--k 5]

Real parts: PostgreSQL, Redis, a Celery worker (``--workers`` processes sharing the concurrency), the fake server
in its own process (a fresh one per way, so neither inherits the other's prompt cache), the official openai client.
The response cache is emptied between the ways. For each way it prints the requests the fake received, the tokens
it billed (input, of which cached, output; checked against the run's own counters), the cost at gpt-4o-mini's
prices ($0.15 / $0.075 cached / $0.60 per million tokens), the wall time against the concurrency ideal (requests ×
latency / concurrency), the worker's CPU per pair, and where the wall time went (until the fake read the first
request; serving, with the share of the concurrency busy; after the last answer); then the ratios. Targets: the
input billed with n = K is at most 1/K of the input billed one sample per request (plus the same outputs), and the
n = K run reaches 90 % of its ideal.
"""

import argparse
import io
import json
import os
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

from _common import (
    free_port,
    reset_database,
    start_fake_server,
    start_worker,
    stop_process,
    tree_cpu_seconds,
    wait_until,
)

PRICES = {"input": Decimal("0.15"), "cached": Decimal("0.075"), "output": Decimal("0.60")}  # $ per 1M tokens


def fake_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/stats", timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def label_once(args, way: str, version, batch, owner, worker_log: Path) -> dict:
    """One run of the pairs, ``way`` "per sample" or "n = K", on a fresh fake server; its figures."""
    from django.db.models import Avg

    from labeling.models import LabelingRun, ResponseCache, TeacherConfig, TeacherSample
    from labeling.services import labeling_run_create

    ResponseCache.objects.all().delete()
    port = free_port()
    server = start_fake_server(port, args.latency)
    try:
        config = TeacherConfig.objects.create(
            name=f"bench-{'n' if way == 'n = K' else 'one'}", model="fake", base_url=f"http://127.0.0.1:{port}/v1",
            samples_per_pair=args.k, concurrency=args.concurrency // args.workers, temperature=0, request_timeout=30,
            price_input_per_mtok=PRICES["input"], price_cached_input_per_mtok=PRICES["cached"],
            price_output_per_mtok=PRICES["output"],
            n_supported=(way == "n = K"),  # "per sample": as remembered for an endpoint that refuses n > 1
        )  # fmt: skip
        cpu_before, load = tree_cpu_seconds(args.worker_pid), os.getloadavg()[0]
        server_cpu_before = tree_cpu_seconds(server.pid)
        log_before = len(worker_log.read_text(errors="replace").splitlines())
        started, started_at = time.perf_counter(), time.time()
        run = labeling_run_create(version=version, config=config, selection={"import_batch": batch.pk}, user=owner,
                                  chunk_size=args.chunk_size)  # fmt: skip
        wait_until(lambda: not LabelingRun.objects.get(pk=run.pk).is_active, 3600, f"run {run.pk} (see {worker_log})")
        elapsed, finished_at = time.perf_counter() - started, time.time()
        cpu = tree_cpu_seconds(args.worker_pid) - cpu_before
        server_cpu = tree_cpu_seconds(server.pid) - server_cpu_before
        stats = fake_stats(port)
    finally:
        stop_process(server, "the fake OpenAI server")
    run.refresh_from_db()
    if run.status != "succeeded" or run.samples_done != args.pairs * args.k:
        raise SystemExit(f"{way}: run ended {run.status}, {run.samples_done} done, {run.samples_failed} failed, "
                         f"{run.error}\n" + worker_log.read_text()[-3000:])  # fmt: skip
    billed = stats["billed"]
    observed = TeacherSample.objects.filter(run=run).aggregate(avg=Avg("latency_ms"))["avg"] / 1000
    lines = worker_log.read_text(errors="replace").splitlines()[log_before:]
    chunks = [line.split("succeeded in ")[-1] for line in lines if "chunk done" in line]
    counters = {"prompt": run.input_tokens, "cached": run.cached_input_tokens, "completion": run.output_tokens}
    return {
        "way": way, "requests": stats["chat_requests"], "answers": stats["answers_asked"], "billed": billed,
        "run_matches_fake": counters == billed, "cost": run.cost, "elapsed": elapsed, "worker_cpu": cpu,
        "ideal": stats["chat_requests"] * args.latency / args.concurrency, "load": load, "server_cpu": server_cpu,
        "at_observed": stats["chat_requests"] * observed / args.concurrency, "observed": observed, "chunks": chunks,
        "served": stats["served"], "started_at": started_at, "finished_at": finished_at,
    }  # fmt: skip


def report(args, results: list[dict]) -> None:
    print(f"{args.pairs:,} pairs, K = {args.k}, {args.concurrency} in flight ({args.workers} worker processes), "
          f"latency {args.latency * 1000:.0f} ms, chunks of {args.chunk_size:,}")  # fmt: skip
    for r in results:
        b = r["billed"]
        print(
            f"{r['way']:>10}: {r['requests']:>6,} requests ({r['answers']:,} samples asked); billed input "
            f"{b['prompt']:>10,} tokens (cached {b['cached']:,}), output {b['completion']:,}; cost ${r['cost']:.4f}"
            f" (run counters = fake's bill: {'yes' if r['run_matches_fake'] else 'NO'}); wall {r['elapsed']:.1f} s"
            f" = {r['ideal'] / r['elapsed']:.0%} of the ideal {r['ideal']:.1f} s; worker CPU "
            f"{r['worker_cpu'] / args.pairs * 1000:.2f} ms per pair, the fake server's "
            f"{r['server_cpu'] / args.pairs * 1000:.2f} ms"
        )
        print(f"{'':>12}latency {r['observed'] * 1000:.0f} ms mean as the client saw it: "
              f"{r['at_observed'] / r['elapsed']:.0%} of the ideal at that latency; load average {r['load']:.1f} "
              f"before the run; chunks:", *r["chunks"], sep="\n              ")  # fmt: skip
        served, requests = r["served"], r["requests"]
        span = served["last"] - served["first"]
        print(f"{'':>12}where the wall time went: {served['first'] - r['started_at']:.2f} s before the fake read "
              f"the first request, {span:.2f} s serving ({served['seconds'] / requests * 1000:.0f} ms per request "
              f"as the fake served it; {served['seconds'] / (span * args.concurrency):.0%} of the concurrency busy),"
              f" {r['finished_at'] - served['last']:.2f} s from the last answer to the run seen finished")  # fmt: skip
    if len(results) < 2:
        return
    old, new = results
    ratio_in = new["billed"]["prompt"] / old["billed"]["prompt"]
    print(f"ratios n = K / per sample: requests {new['requests'] / old['requests']:.3f}, input tokens {ratio_in:.3f} "
          f"(target <= 1/K = {1 / args.k:.3f}: {'OK' if ratio_in <= 1 / args.k + 1e-9 else 'MISSED'}), output "
          f"tokens {new['billed']['completion'] / old['billed']['completion']:.3f}, "
          f"cost {new['cost'] / old['cost']:.3f}, wall time {new['elapsed'] / old['elapsed']:.3f}")  # fmt: skip
    reached = new["ideal"] / new["elapsed"]
    print(f"n = K throughput {reached:.1%} of its concurrency ideal (target >= 90 %): "
          f"{'OK' if reached >= 0.9 else 'MISSED'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2_000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=2, help="Worker processes; concurrency is split among them.")
    parser.add_argument("--chunk-size", type=int, default=0, help="Default: the pairs split evenly over the workers.")
    parser.add_argument("--only", choices=("per-sample", "n"), help="Run one way only (e.g. a larger n = K run).")
    args = parser.parse_args()
    args.chunk_size = args.chunk_size or -(-args.pairs // args.workers)
    broker = os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
    reset_database()

    from django.contrib.auth import get_user_model

    from labeling.services import import_file
    from policyhub import celery_app
    from policyhub.demo import demo_seed

    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["POLICYHUB_VAR_DIR"] = tmp
        from django.conf import settings

        settings.VAR_DIR = Path(tmp)
        version = demo_seed().policy.versions.get(number=1)
        members, jobs = max(1, args.pairs // 10), 10
        import_file(kind="members", stream=io.BytesIO(("member_id,headline\n" + "".join(
            f"m{i},Engineer {i}\n" for i in range(members))).encode()), name="m.csv")  # fmt: skip
        import_file(kind="jobs", stream=io.BytesIO(("job_id,title,description\n" + "".join(
            f"j{i},Job {i},Build things\n" for i in range(jobs))).encode()), name="j.csv")  # fmt: skip
        pairs = "".join(f"m{i // jobs},j{i % jobs}\n" for i in range(args.pairs))
        imported = import_file(kind="pairs", stream=io.BytesIO(("member_id,job_id\n" + pairs).encode()), name="p.csv")
        assert imported.ok, imported.summary()
        owner = get_user_model().objects.get(username="owner")
        with celery_app.connection_for_write() as conn:
            celery_app.control.purge(connection=conn)
        worker_log = Path(tmp) / "worker.log"
        worker = start_worker(worker_log, {**os.environ, "OPENAI_API_KEY": "bench", "CELERY_BROKER_URL": broker},
                              args.workers)  # fmt: skip
        args.worker_pid = worker.pid
        try:
            ways = {"per-sample": ("per sample",), "n": ("n = K",)}.get(args.only, ("per sample", "n = K"))
            for way in ways:
                results.append(label_once(args, way, version, imported.batch, owner, worker_log))
        finally:  # print what was measured even if a run or the clean-up fails
            try:
                report(args, results)
            finally:
                stop_process(worker, "the Celery worker", timeout=30)


if __name__ == "__main__":
    main()
