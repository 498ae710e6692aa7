"""Batch-mode runs: the OpenAI Batch API instead of concurrent chat completions (cheaper, within 24 h).

Submitting writes one JSONL line per (pair, sample) the run still needs — ``custom_id`` ``"<pair_id>:<sample>"``,
the same body an online request sends — after answering what it can from the response cache, uploads the file
and creates the batch (``BatchJob`` attempt 1). Polling asks for the batch's status; once it has completed, the
output and error files are read by ``custom_id`` and every line is validated like an online answer. Schema
violations (bad JSON, label outside the set, unknown rule) are re-asked ONCE in a follow-up batch (a
*resubmission*); a second violation, an HTTP error line or a line missing from both files is a failed sample with
its reason. The requests, the reading of each answer and the writing of samples, cache entries, counters and
candidates are the run engine's, as for online runs (``labeling.pipeline``); they are written in one transaction
with the batch's move to ``completed``, so ingesting twice adds nothing. A failed, expired or cancelled batch fails
the run with a clear error; resuming it submits what is still missing as a new attempt.

Costs are the config's prices times its ``batch_price_factor`` (0.5 by default: the Batch API's discount).
"""

import json
from collections.abc import Iterator

import openai
from django.db import transaction
from django.utils import timezone

from ..models import BatchJob, LabelingRun, RunChunk
from ..pipeline.answers import write_answers
from ..pipeline.context import RunContext
from ..pipeline.requests import Work, answer_from_cache, chunk_candidates, missing_work
from ..teacher import TeacherAnswer, TeacherConfigError
from ..teacher.openai_provider import sync_client
from ..teacher.parsing import read_completion
from .figures import figures_mark_stale, version_labeling_runs

PENDING = "pending"  # the batch is open: poll again later
BATCH_MAX_REQUESTS = 50_000  # per batch file (OpenAI's limit)
BATCH_MAX_BYTES = 200 * 1024 * 1024  # per batch input file (OpenAI's limit)
SCHEMA_ERRORS = frozenset({"malformed_json", "label_outside_set", "schema_violation", "unknown_rule"})
ENDED = {"failed": BatchJob.Status.FAILED, "expired": BatchJob.Status.EXPIRED, "cancelled": BatchJob.Status.CANCELLED}


def custom_id(key: tuple[int, int]) -> str:
    return f"{key[0]}:{key[1]}"


def parse_custom_id(value) -> tuple[int, int] | None:
    try:
        pair_id, index = str(value).split(":")
        return int(pair_id), int(index)
    except ValueError:
        return None


def _line(ctx: RunContext, request) -> bytes:
    """The JSONL line of one request: the body an online request sends, named by its custom id."""
    body = {"model": ctx.params["model"], "messages": request.messages, "n": 1}
    body.update((name, value) for name, value in ctx.params.items() if name != "model")
    item = {"custom_id": custom_id(request.key), "method": "POST", "url": "/v1/chat/completions", "body": body}
    return (json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8")


def _pending_work(ctx: RunContext, **which) -> Iterator[tuple[RunChunk, Work]]:
    """(chunk, what its candidates still need, one request per sample: a line's ``custom_id`` names one sample)
    for each chunk of the run that is not done; ``which`` as for :func:`missing_work`."""
    for chunk in list(RunChunk.objects.filter(run=ctx.run, status=RunChunk.Status.PENDING).order_by("index")):
        in_chunk = chunk_candidates(chunk)
        yield chunk, missing_work(ctx, in_chunk, list(in_chunk.order_by("id")), one_per_sample=True, **which)


def _write(ctx: RunContext, chunk: RunChunk, work: Work, answers: dict) -> None:
    """Write answers for a chunk's candidates and close the chunk once they are all complete."""
    if write_answers(ctx, work.candidates, work.facts, answers, work.keys):
        RunChunk.objects.filter(pk=chunk.pk).update(
            status=RunChunk.Status.DONE, finished_at=timezone.now(), lease_until=None, lease_token=""
        )


def _fail(run: LabelingRun, error: str) -> None:
    LabelingRun.objects.filter(pk=run.pk).fail(error)


def _load(run_id: int) -> LabelingRun:
    return LabelingRun.objects.select_related("policy_version__policy").get(pk=run_id)


def _client(run: LabelingRun) -> openai.OpenAI | None:
    try:
        return sync_client(run.config_snapshot)
    except TeacherConfigError as error:
        _fail(run, str(error))
        return None


# --- submitting ---------------------------------------------------------------------------------------------
def labeling_run_batch_submit(*, run_id: int) -> str:
    """Submit the run's missing requests as one batch (cached answers are written directly). Returns
    :data:`PENDING` when a batch is open (poll it), otherwise what happened. A run that already has an open or
    completed batch submits nothing: polling carries on from there."""
    run = _load(run_id)
    if run.status != LabelingRun.Status.RUNNING:
        return f"run is {run.status}"
    client = _client(run)
    if client is None:
        return "failed: no client"
    ctx = RunContext.of(run)
    with transaction.atomic():
        LabelingRun.objects.select_for_update().filter(pk=run.pk).first()  # one submitter per run at a time
        latest = run.batch_jobs.order_by("-attempt").first()
        if latest and latest.status in (BatchJob.Status.SUBMITTED, BatchJob.Status.COMPLETED):
            return PENDING
        lines: list[bytes] = []
        for chunk, work in _pending_work(ctx):
            answer_from_cache(work)
            _write(ctx, chunk, work, work.cached)
            lines.extend(_line(ctx, request) for request in work.requests)
        if too_large := _over_limits(lines):
            _fail(run, too_large)
            return f"failed: {too_large}"
        if lines:
            _submit(client, run, attempt=(latest.attempt + 1) if latest else 1, lines=lines, resubmission=False)
    if not lines:
        LabelingRun.objects.filter(pk=run.pk).finish_if_complete()
        return "everything was cached: nothing to submit"
    return PENDING


def _over_limits(lines: list[bytes]) -> str:
    """Why these lines cannot go in one batch (the Batch API's limits), or ""."""
    size = sum(len(line) for line in lines)
    if len(lines) > BATCH_MAX_REQUESTS:
        return (
            f"The batch would hold {len(lines):,} requests; the OpenAI Batch API takes at most "
            f"{BATCH_MAX_REQUESTS:,} per batch. Split the pairs into smaller runs or use online mode."
        )
    if size > BATCH_MAX_BYTES:
        return (
            f"The batch input file would be {size / 1024 / 1024:,.1f} MB; the OpenAI Batch API takes at most "
            f"{BATCH_MAX_BYTES / 1024 / 1024:,.0f} MB per file. Split the pairs into smaller runs or use online mode."
        )
    return ""


def _metadata(run: LabelingRun, attempt: int) -> dict[str, str]:
    """Names a batch as this run's attempt (the creation time tells runs of other installs apart)."""
    return {"policyhub_run": str(run.pk), "attempt": str(attempt), "run_created": run.created_at.isoformat()}


def _already_submitted(client: openai.OpenAI, run: LabelingRun, attempt: int):
    """The batch created for this attempt by an earlier try that died before recording it, if any. Batches are
    listed newest first; the scan stops at those created before the run."""
    wanted = _metadata(run, attempt)
    since = run.created_at.timestamp() - 300  # allow for clock skew between us and the provider
    for batch in client.batches.list(limit=100):
        if batch.created_at < since:
            return None
        if (batch.metadata or {}) == wanted:
            return batch
    return None


def _submit(client: openai.OpenAI, run: LabelingRun, *, attempt: int, lines: list[bytes], resubmission: bool):
    """Upload the JSONL, create the batch, record it. Call with the run row locked. Idempotent across a crash
    between creating the batch and committing its record: the batch is found by its metadata and recorded."""
    batch = _already_submitted(client, run, attempt)
    if batch is None:
        name = f"policyhub-run-{run.pk}-attempt-{attempt}.jsonl"
        upload = client.files.create(file=(name, b"".join(lines)), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata=_metadata(run, attempt),
        )
    return _record(run, batch, attempt=attempt, resubmission=resubmission, request_count=len(lines))


def _record(run: LabelingRun, batch, *, attempt: int, resubmission: bool, request_count: int) -> BatchJob:
    job = BatchJob(
        run=run, attempt=attempt, resubmission=resubmission, openai_batch_id=batch.id,
        input_file_id=batch.input_file_id, openai_status=batch.status, request_count=request_count,
    )  # fmt: skip
    job.full_clean()
    job.save()
    return job


def _resubmit_violations(client: openai.OpenAI, run: LabelingRun, job: BatchJob) -> bool:
    """Re-ask, once, the requests whose answers violated the schema in ``job`` (idempotent); False if none of
    them is still missing."""
    ctx = RunContext.of(run)
    wanted = {key for key in map(parse_custom_id, job.violations) if key}
    with transaction.atomic():
        LabelingRun.objects.select_for_update().filter(pk=run.pk).first()
        if BatchJob.objects.filter(run=run, attempt=job.attempt + 1).exists():
            return True
        lines = [_line(ctx, request) for _chunk, work in _pending_work(ctx, only=wanted) for request in work.requests]
        if lines:
            _submit(client, run, attempt=job.attempt + 1, lines=lines, resubmission=True)
    return bool(lines)


# --- polling and ingesting ----------------------------------------------------------------------------------
def poll_chain(run_id: int) -> str:
    """The run's current chain of polls (a new submission's polls join it)."""
    return LabelingRun.objects.filter(pk=run_id).values_list("batch_poll_chain", flat=True).first() or ""


def labeling_run_batch_poll(*, run_id: int, chain: str = "") -> str:
    """Check the run's latest batch. Returns :data:`PENDING` while there is something to wait for; ingests a
    completed batch (once), resubmits its schema violations, and finishes the run when nothing is left.

    Each poll schedules the next; ``chain`` names that chain of polls. The watchdog starts a new chain when the
    old one stopped (the run's ``batch_poll_chain``): a poll of an older chain that was only late ends there, so
    chains never multiply."""
    run = _load(run_id)
    if run.status != LabelingRun.Status.RUNNING:
        return f"run is {run.status}"
    if chain != run.batch_poll_chain:
        return "a newer chain of polls carries on"
    job = run.batch_jobs.order_by("-attempt").first()
    if job is None:
        return "nothing submitted"
    if job.status not in (BatchJob.Status.SUBMITTED, BatchJob.Status.COMPLETED):
        return f"batch {job.status}"
    BatchJob.objects.filter(pk=job.pk).update(polled_at=timezone.now())
    client = _client(run)
    if client is None:
        return "failed: no client"
    if job.status == BatchJob.Status.SUBMITTED:
        batch = client.batches.retrieve(job.openai_batch_id)
        counts = batch.request_counts
        BatchJob.objects.filter(pk=job.pk, status=BatchJob.Status.SUBMITTED).update(
            openai_status=batch.status,
            request_count=counts.total if counts else job.request_count,
            completed_count=counts.completed if counts else 0,
            failed_count=counts.failed if counts else 0,
        )
        if batch.status in ENDED:
            return _batch_ended(run, job, batch)
        if batch.status != "completed":
            return PENDING
        ctx = RunContext.of(run)
        ingest(ctx, job, batch, read_results(client, batch, ctx))
        job.refresh_from_db()
    if job.violations and not job.resubmission and _resubmit_violations(client, run, job):
        return PENDING
    LabelingRun.objects.filter(pk=run.pk).finish_if_complete()
    return "done"


def _batch_ended(run: LabelingRun, job: BatchJob, batch) -> str:
    details = "; ".join(f"{e.code}: {e.message}" for e in (batch.errors.data or [])) if batch.errors else ""
    error = f"OpenAI batch {batch.id} (attempt {job.attempt}) {batch.status}" + (f": {details}" if details else ".")
    BatchJob.objects.filter(pk=job.pk, status=BatchJob.Status.SUBMITTED).update(
        status=ENDED[batch.status], error=error[:5000], finished_at=timezone.now()
    )
    _fail(run, error + " Resume the run to submit what is still missing.")
    return f"failed: batch {batch.status}"


def read_results(client: openai.OpenAI, batch, ctx: RunContext) -> dict[tuple[int, int], TeacherAnswer]:
    """Every line of the output and error files as an answer, keyed (pair id, sample index)."""
    results: dict[tuple[int, int], TeacherAnswer] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        for line in client.files.content(file_id).text.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # not attributable to a request; its request counts as missing
            key = parse_custom_id(record.get("custom_id"))
            if key is not None:
                results[key] = _answer(key, record, ctx)
    return results


def _answer(key: tuple[int, int], record: dict, ctx: RunContext) -> TeacherAnswer:
    """One output line as an answer, read and validated like an online one."""
    answer = TeacherAnswer(key=key)
    response, error = record.get("response") or {}, record.get("error") or {}
    status = response.get("status_code")
    if status != 200 or error:
        body_error = (response.get("body") or {}).get("error") or {}
        message = error.get("message") or body_error.get("message") or "no response"
        answer.error_kind = _line_error_kind(status, error)
        answer.error = f"batch request failed ({status or error.get('code')}): {message}"
        return answer
    read_completion(answer, response.get("body"), ctx.space, logprobs=bool(ctx.params.get("logprobs")))
    return answer


def _line_error_kind(status: int | None, error: dict) -> str:
    """The error kinds online requests report, for an output line that carries an HTTP status or an error."""
    if status == 429:
        return "rate_limited"
    if status and status >= 500:
        return "server_error"
    if status:
        return f"http_{status}"
    return "timeout" if "timeout" in str(error.get("code")) else "batch_error"


def ingest(ctx: RunContext, job: BatchJob, batch, results: dict) -> bool:
    """Write a completed batch's results; False if it was ingested already (nothing is written twice)."""
    violations = _violations(job, results)
    with transaction.atomic():
        locked = BatchJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != BatchJob.Status.SUBMITTED:
            return False
        skip = {key for key in map(parse_custom_id, violations) if key}
        for chunk, work in _pending_work(ctx, skip=skip):
            answers = {
                r.key: results.get(r.key)
                or TeacherAnswer(key=r.key, error_kind="batch_missing", error=f"no result for {custom_id(r.key)} "
                                 f"in batch {batch.id}")
                for r in work.requests
            }  # fmt: skip
            _write(ctx, chunk, work, answers)
        counts = batch.request_counts
        locked.status, locked.openai_status = BatchJob.Status.COMPLETED, batch.status
        locked.finished_at = timezone.now()
        locked.output_file_id, locked.error_file_id = batch.output_file_id or "", batch.error_file_id or ""
        if counts:
            locked.request_count, locked.completed_count, locked.failed_count = (
                counts.total, counts.completed, counts.failed,
            )  # fmt: skip
        locked.violations = violations
        locked.save()
        figures_mark_stale(run_ids=version_labeling_runs(ctx.run.pk))  # answers, approvals, other teachers' flags
    return True


def _violations(job: BatchJob, results: dict) -> dict:
    """The schema violations of a first attempt, to re-ask once ({custom id: what was answered}). In a
    resubmission every answer is final: its tokens add those of the violation it re-asked."""
    earlier = {}
    if job.resubmission:
        before = BatchJob.objects.filter(run=job.run_id, attempt=job.attempt - 1)
        earlier = before.values_list("violations", flat=True)[0]
    violations = {}
    for key, answer in results.items():
        first = earlier.get(custom_id(key))
        if first:  # the second try of a violation: it costs both requests, and a second violation fails it
            answer.attempts = 2
            answer.input_tokens += first["input_tokens"]
            answer.cached_input_tokens += first.get("cached_input_tokens", 0)
            answer.output_tokens += first["output_tokens"]
        elif answer.error_kind in SCHEMA_ERRORS and not job.resubmission:
            violations[custom_id(key)] = {
                "error_kind": answer.error_kind, "error": answer.error, "raw": answer.raw,
                "input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens,
                "cached_input_tokens": answer.cached_input_tokens,
            }  # fmt: skip
    return violations


# --- cancelling ---------------------------------------------------------------------------------------------
def batch_cancel_open(*, run: LabelingRun) -> None:
    """Cancel the run's open batch at OpenAI (best effort) and stop polling it."""
    job = run.batch_jobs.filter(status=BatchJob.Status.SUBMITTED).order_by("-attempt").first()
    if job is None:
        return
    error = ""
    try:
        status = sync_client(run.config_snapshot, max_retries=1).batches.cancel(job.openai_batch_id).status
    except (TeacherConfigError, openai.OpenAIError) as exc:
        status, error = job.openai_status, f"cancelling at OpenAI failed: {exc}"[:5000]
    if status in ("completed", "finalizing"):  # too late to cancel: keep it, so resuming ingests what was paid for
        BatchJob.objects.filter(pk=job.pk).update(openai_status=status)
        return
    BatchJob.objects.filter(pk=job.pk, status=BatchJob.Status.SUBMITTED).update(
        status=BatchJob.Status.CANCELLED, openai_status=status, error=error, finished_at=timezone.now()
    )
