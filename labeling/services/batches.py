"""Batch-mode runs: the OpenAI Batch API instead of concurrent chat completions (cheaper, within 24 h).

Submitting writes one JSONL line per pair the run still needs samples of, asking for them as choices (``n``) as
online requests do — ``custom_id`` ``"<pair_id>:<sample>,<sample>,…"``, the same body an online request sends —
after answering what it can from the response cache, uploads the file and creates the batch (``BatchJob``
attempt 1). A config known to refuse ``n > 1`` (``TeacherConfig.n_supported``) gets one line per sample
(``"<pair_id>:<sample>"``, ``n = 1``). Polling asks for the batch's status; once it has completed, the
output and error files are read by ``custom_id`` and every line is validated like an online answer. Schema
violations (bad JSON, label outside the set, unknown rule) are re-asked ONCE in a follow-up batch (a
*resubmission*); a second violation, an HTTP error line or a line missing from both files is a failed sample with
its reason. ``n`` is found out as online: a completed batch whose ``n > 1`` lines answered every choice shows
that the endpoint takes ``n``; lines refused with a 400/422 (while no line showed ``n`` works) or answered with
fewer choices than asked are not failures but re-asked one line per sample in the follow-up batch, and once such a
line is answered the config remembers that its endpoint refuses ``n > 1``. A refused line is billed nothing. The
requests, the reading of each answer and the writing of samples, cache entries, counters and
candidates are the run engine's, as for online runs (``labeling.pipeline``); they are written in one transaction
with the batch's move to ``completed``, so ingesting twice adds nothing. A failed, expired or cancelled batch fails
the run with a clear error; resuming it submits what is still missing as a new attempt.

Costs are the config's prices times its ``batch_price_factor`` (0.5 by default: the Batch API's discount).
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import openai
from django.db import transaction
from django.utils import timezone

from ..models import BatchJob, LabelingRun, RunChunk
from ..pipeline.answers import write_answers
from ..pipeline.chunk import known_n_support, remember_n
from ..pipeline.context import RunContext
from ..pipeline.requests import Key, Work, answer_from_cache, chunk_candidates, missing_work
from ..teacher import TeacherAnswer, TeacherConfigError
from ..teacher.openai_provider import N_REFUSED_STATUSES, sync_client
from ..teacher.parsing import read_completion, read_completion_choices
from .figures import figures_keep_ended, figures_mark_stale, version_labeling_runs

PENDING = "pending"  # the batch is open: poll again later
BATCH_MAX_REQUESTS = 50_000  # per batch file (OpenAI's limit)
BATCH_MAX_BYTES = 200 * 1024 * 1024  # per batch input file (OpenAI's limit)
SCHEMA_ERRORS = frozenset({"malformed_json", "label_outside_set", "schema_violation", "unknown_rule"})
#: A sample of an ``n > 1`` line the endpoint refused, or answered without its choice: asked again, one per line.
N_ERRORS = frozenset({"n_refused", "missing_choice"})
ENDED = {"failed": BatchJob.Status.FAILED, "expired": BatchJob.Status.EXPIRED, "cancelled": BatchJob.Status.CANCELLED}


def custom_id(keys) -> str:
    """A line's ``custom_id``: the pair and the sample indices it asks for (one key or several of one pair)."""
    keys = [keys] if isinstance(keys[0], int) else list(keys)
    return f"{keys[0][0]}:{','.join(str(index) for _pair, index in keys)}"


def parse_custom_id(value) -> tuple[Key, ...]:
    """The (pair id, sample index) keys a ``custom_id`` names; () if it is not one of ours."""
    try:
        pair_id, indices = str(value).split(":")
        return tuple((int(pair_id), int(index)) for index in indices.split(","))
    except ValueError:
        return ()


def _keys_of(custom_ids) -> set[Key]:
    return {key for value in custom_ids for key in parse_custom_id(value)}


def _line(ctx: RunContext, request) -> bytes:
    """The JSONL line of one request: the body an online request sends, named by its custom id."""
    keys = request.answer_keys
    body = {"model": ctx.params["model"], "messages": request.messages, "n": len(keys)}
    body.update((name, value) for name, value in ctx.params.items() if name != "model")
    item = {"custom_id": custom_id(keys), "method": "POST", "url": "/v1/chat/completions", "body": body}
    return (json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8")


def _pending_work(ctx: RunContext, *, one_per_sample: bool, **which) -> Iterator[tuple[RunChunk, Work]]:
    """(chunk, what its candidates still need: one request per pair asking for its missing samples as choices,
    or with ``one_per_sample`` one per sample) for each chunk of the run that is not done; ``which`` as for
    :func:`missing_work`."""
    for chunk in list(RunChunk.objects.filter(run=ctx.run, status=RunChunk.Status.PENDING).order_by("index")):
        in_chunk = chunk_candidates(chunk)
        yield chunk, missing_work(ctx, in_chunk, list(in_chunk.order_by("id")), one_per_sample=one_per_sample, **which)


def _write(ctx: RunContext, chunk: RunChunk, work: Work, answers: dict) -> None:
    """Write answers for a chunk's candidates and close the chunk once they are all complete."""
    if write_answers(ctx, work.candidates, work.facts, answers, work.keys):
        RunChunk.objects.filter(pk=chunk.pk).update(
            status=RunChunk.Status.DONE, finished_at=timezone.now(), lease_until=None, lease_token=""
        )


def _fail(run: LabelingRun, error: str) -> None:
    LabelingRun.objects.filter(pk=run.pk).fail(error)
    figures_keep_ended(run_ids=[run.pk])


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
        for chunk, work in _pending_work(ctx, one_per_sample=known_n_support(run) is False):
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
    """Re-ask what ``job`` left to re-ask (idempotent): its schema violations, once, and the samples of its
    lines whose ``n > 1`` the endpoint refused or ignored, one line each. False if none of them is still missing."""
    ctx = RunContext.of(run)
    singly = _keys_of(cid for cid, seen in job.violations.items() if seen["error_kind"] in N_ERRORS)
    again = _keys_of(job.violations) - singly
    with transaction.atomic():
        LabelingRun.objects.select_for_update().filter(pk=run.pk).first()
        if BatchJob.objects.filter(run=run, attempt=job.attempt + 1).exists():
            return True
        ways = ((singly, True), (again, known_n_support(run) is False))  # refused or ignored n: one per sample
        lines = [
            _line(ctx, request)
            for wanted, one_per_sample in ways if wanted
            for _chunk, work in _pending_work(ctx, one_per_sample=one_per_sample, only=wanted)
            for request in work.requests
        ]  # fmt: skip
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
    if job.violations and _resubmit_violations(client, run, job):
        return PENDING
    with transaction.atomic():
        LabelingRun.objects.filter(pk=run.pk).finish_if_complete()
        figures_keep_ended(run_ids=[run.pk])
    return "done"


def _batch_ended(run: LabelingRun, job: BatchJob, batch) -> str:
    details = "; ".join(f"{e.code}: {e.message}" for e in (batch.errors.data or [])) if batch.errors else ""
    error = f"OpenAI batch {batch.id} (attempt {job.attempt}) {batch.status}" + (f": {details}" if details else ".")
    BatchJob.objects.filter(pk=job.pk, status=BatchJob.Status.SUBMITTED).update(
        status=ENDED[batch.status], error=error[:5000], finished_at=timezone.now()
    )
    _fail(run, error + " Resume the run to submit what is still missing.")
    return f"failed: batch {batch.status}"


@dataclass
class Results:
    """A completed batch's answers, keyed (pair id, sample index), and what its ``n > 1`` lines showed of the
    endpoint (``n_learned``: True every choice came back, False fewer did, None nothing to tell)."""

    answers: dict[Key, TeacherAnswer] = field(default_factory=dict)
    n_learned: bool | None = None


def read_results(client: openai.OpenAI, batch, ctx: RunContext) -> Results:
    """Every line of the output and error files as answers, one per sample the line asked for. Lines asking for
    several samples that were refused (400/422) are ``n_refused`` answers unless another line showed the
    endpoint takes ``n`` (or the config knows it does): then the refusal is the request's own fault."""
    results, refused = Results(), []
    ignored = answered = False
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
            keys = parse_custom_id(record.get("custom_id"))
            if not keys:
                continue
            answers = _answers(keys, record, ctx)
            results.answers.update((answer.key, answer) for answer in answers)
            if len(keys) > 1:
                status = (record.get("response") or {}).get("status_code")
                missing = any(answer.error_kind == "missing_choice" for answer in answers)
                ignored, answered = ignored or missing, answered or (status == 200 and not missing)
                if status in N_REFUSED_STATUSES:
                    refused += answers
    results.n_learned = False if ignored else (True if answered else None)
    if refused and not answered and known_n_support(ctx.run) is not True:
        for answer in refused:  # not a failure: asked again one per sample
            answer.error_kind = "n_refused"
    return results


def _answers(keys: tuple[Key, ...], record: dict, ctx: RunContext) -> list[TeacherAnswer]:
    """One output line as the answers it asked for (one per choice), read and validated like online ones."""
    answers = [TeacherAnswer(key=key) for key in keys]
    response, error = record.get("response") or {}, record.get("error") or {}
    status = response.get("status_code")
    if status != 200 or error:
        body_error = (response.get("body") or {}).get("error") or {}
        message = error.get("message") or body_error.get("message") or "no response"
        for answer in answers:
            answer.error_kind = _line_error_kind(status, error)
            answer.error = f"batch request failed ({status or error.get('code')}): {message}"
        return answers
    logprobs = bool(ctx.params.get("logprobs"))
    if len(answers) == 1:
        read_completion(answers[0], response.get("body"), ctx.space, logprobs=logprobs)
    else:
        read_completion_choices(answers, response.get("body"), ctx.space, logprobs=logprobs)
    return answers


def _line_error_kind(status: int | None, error: dict) -> str:
    """The error kinds online requests report, for an output line that carries an HTTP status or an error."""
    if status == 429:
        return "rate_limited"
    if status and status >= 500:
        return "server_error"
    if status:
        return f"http_{status}"
    return "timeout" if "timeout" in str(error.get("code")) else "batch_error"


def ingest(ctx: RunContext, job: BatchJob, batch, results: Results) -> bool:
    """Write a completed batch's results; False if it was ingested already (nothing is written twice). What the
    batch showed of the endpoint's ``n`` is remembered on the config in the same transaction."""
    violations, learned = _violations(job, results.answers)
    learned = results.n_learned if results.n_learned is not None else learned
    with transaction.atomic():
        locked = BatchJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != BatchJob.Status.SUBMITTED:
            return False
        skip = _keys_of(violations)
        for chunk, work in _pending_work(ctx, one_per_sample=True, skip=skip):
            answers = {
                r.key: results.answers.get(r.key)
                or TeacherAnswer(key=r.key, error_kind="batch_missing", error=f"no result for {custom_id(r.key)} "
                                 f"in batch {batch.id}")
                for r in work.requests
            }  # fmt: skip
            _write(ctx, chunk, work, answers)
        if learned is not None:
            remember_n(ctx.run, learned)
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


def _violations(job: BatchJob, results: dict) -> tuple[dict, bool | None]:
    """What this attempt leaves to re-ask ({custom id: what was answered}): a schema violation not asked again
    yet, a sample whose ``n > 1`` line was refused or lacked its choice. A re-asked violation is final: its tokens
    add those of the violation it re-asked. Also returns False once a sample re-asked for a refused ``n`` was
    answered (the endpoint takes ``n = 1``, not more), else None."""
    earlier = {}
    if job.resubmission:
        before = BatchJob.objects.filter(run=job.run_id, attempt=job.attempt - 1)
        earlier = before.values_list("violations", flat=True)[0]
    violations, learned = {}, None
    for key, answer in results.items():
        first = earlier.get(custom_id(key))
        if first and first["error_kind"] == "n_refused" and (answer.ok or answer.error_kind in SCHEMA_ERRORS):
            learned = False
        # the second try of a violation costs both; a refused line or a missing choice was billed nothing
        if first and first["error_kind"] not in N_ERRORS:
            answer.attempts = 2
            answer.input_tokens += first["input_tokens"]
            answer.cached_input_tokens += first.get("cached_input_tokens", 0)
            answer.output_tokens += first["output_tokens"]
        elif answer.error_kind in SCHEMA_ERRORS | N_ERRORS:
            violations[custom_id(key)] = {
                "error_kind": answer.error_kind, "error": answer.error, "raw": answer.raw,
                "input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens,
                "cached_input_tokens": answer.cached_input_tokens,
            }  # fmt: skip
    return violations, learned


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
