"""Labeling runs: create a run, process its chunks on workers, cancel and resume it.

A run materialises its pairs as pending candidates and cuts them into chunks (``RunChunk``); each chunk is one
Celery task, processed by the run engine (``labeling.pipeline.chunk``). In batch mode the run's requests go to
the OpenAI Batch API instead (``services.batches``).
"""

from itertools import zip_longest

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from policyhub.models import PolicyVersion
from policyhub.prompts import system_prompt
from policyhub.queueing import enqueue, enqueue_each

from ..models import BatchJob, Candidate, LabelingRun, RunChunk, TeacherConfig
from ..pipeline import chunk, routing, trust
from ..selectors.planning import pairs_for_selection
from . import batches, figures

ChunkBusy = chunk.ChunkBusy


def labeling_run_create(
    *,
    version: PolicyVersion,
    config: TeacherConfig,
    selection: dict,
    user=None,
    thresholds: dict | None = None,
    checks: dict | None = None,
    idempotency_key: str = "",
    chunk_size: int = 500,
    mode: str = LabelingRun.Mode.ONLINE,
    reviewers_per_item: int = 1,
    purpose: str = LabelingRun.Purpose.LABELING,
    enqueue_chunks: bool = True,
    judge: TeacherConfig | None = None,
    red_team_run=None,
    red_team_category: str = "",
) -> LabelingRun:
    """Create a run over the selected pairs and queue its chunks (after commit), or, in batch mode, its OpenAI
    batch submission. Same idempotency key and user: the same run comes back. Only a draft preview labels under a
    draft; ``enqueue_chunks=False`` leaves queueing the chunks to the caller (online mode). ``judge``: a second
    LLM config that judges every answer (the ``judge_verdict`` trust check; online runs). ``red_team_run`` and
    ``red_team_category``: a red-team run's part (``services.redteam``; its category's variants, or the clean
    originals when the category is empty)."""
    if idempotency_key and (existing := _same_request(user, idempotency_key)):
        return existing
    _check_options(version=version, config=config, purpose=purpose, mode=mode, chunk_size=chunk_size,
                   reviewers_per_item=reviewers_per_item)  # fmt: skip
    labeling_run_check_judge(judge=judge, mode=mode)
    try:
        limits = routing.thresholds_with_defaults(thresholds)
        settings = trust.settings_with_defaults(checks)
    except ValueError as error:
        raise ValidationError(str(error)) from None
    pairs = pairs_for_selection(selection)
    run = LabelingRun(
        policy_version=version, teacher_config=config, config_snapshot=config.snapshot(),
        judge_config=judge, judge_snapshot=judge.snapshot() if judge else {},
        system_prompt=system_prompt(version), selection=selection, thresholds=limits, checks=settings, mode=mode,
        purpose=purpose,
        version_content={"content_hash": version.content_hash, "labels": version.labels, "rules": version.rules},
        reviewers_per_item=reviewers_per_item, chunk_size=chunk_size, idempotency_key=idempotency_key,
        created_by=user, status=LabelingRun.Status.RUNNING, started_at=timezone.now(),
        red_team_run=red_team_run, red_team_category=red_team_category,
    )  # fmt: skip
    try:
        with transaction.atomic():
            chunks = _materialise(run, pairs)
            figures.figures_keep_started(run=run)  # a large run's page: its figures kept from the start
            figures.figures_mark_stale(run_ids=[run.pk], kinds=figures.AGREEMENT)  # the version's lists its runs
            if mode == LabelingRun.Mode.BATCH:
                enqueue("labeling.tasks.labeling_run_batch_submit", run.pk)
            elif enqueue_chunks:
                enqueue_run_chunks(run, range(chunks))
    except IntegrityError:
        if idempotency_key and (existing := _same_request(user, idempotency_key)):
            return existing
        raise
    return run


def _same_request(user, idempotency_key: str) -> LabelingRun | None:
    return LabelingRun.objects.filter(created_by=user, idempotency_key=idempotency_key).first()


def _check_options(*, version, config, purpose, mode, chunk_size, reviewers_per_item) -> None:
    """The messages a caller sees for options the database constraints would refuse anyway."""
    if purpose not in LabelingRun.Purpose.values:
        raise ValidationError(f"purpose must be one of {', '.join(LabelingRun.Purpose.values)}, not {purpose!r}.")
    if purpose == LabelingRun.Purpose.DRAFT_PREVIEW:
        if version.status != PolicyVersion.Status.DRAFT:
            raise ValidationError(f"A draft preview labels under a draft; v{version.number} is {version.status}.")
    elif purpose == LabelingRun.Purpose.RED_TEAM:
        if version.status == PolicyVersion.Status.RETIRED:
            raise ValidationError(f"Red-team a published version or the draft; v{version.number} is retired.")
    elif version.status != PolicyVersion.Status.PUBLISHED:
        raise ValidationError(f"Runs label under a published version; v{version.number} is {version.status}.")
    if purpose != LabelingRun.Purpose.LABELING and mode != LabelingRun.Mode.ONLINE:
        raise ValidationError("Gold-set scoring, draft previews and red-team runs run online.")
    if not 1 <= chunk_size <= 10_000:
        raise ValidationError("chunk_size must be between 1 and 10,000.")
    if reviewers_per_item not in (1, 2, 3):
        raise ValidationError("reviewers_per_item must be 1, 2 or 3.")
    if mode not in LabelingRun.Mode.values:
        raise ValidationError(f"mode must be one of {', '.join(LabelingRun.Mode.values)}, not {mode!r}.")
    if mode == LabelingRun.Mode.BATCH and config.provider != TeacherConfig.Provider.OPENAI:
        raise ValidationError("Batch mode uses the OpenAI Batch API: choose a teacher config with the openai provider.")


def labeling_run_check_judge(*, judge: TeacherConfig | None, mode: str) -> None:
    """Refuse a judge that cannot judge: not an LLM config, or a run that is not online."""
    if judge is None:
        return
    if judge.provider != TeacherConfig.Provider.OPENAI:
        raise ValidationError(
            f"The judge must be an LLM teacher config (the openai provider); {judge.name!r} is "
            f"{judge.get_provider_display()}."
        )
    if mode != LabelingRun.Mode.ONLINE:
        raise ValidationError("A judge judges online runs only: choose online mode, or start the run without a judge.")


def _materialise(run: LabelingRun, pairs) -> int:
    """Save the run with one pending candidate per selected pair (one INSERT … SELECT: the columns it does not
    name take their database defaults) and its chunks of ``chunk_size`` candidates; returns how many chunks."""
    run.save()
    pair_sql, params = pairs.values("id").query.sql_with_params()
    table = Candidate._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (run_id, pair_id) SELECT %s, sub.id FROM ({pair_sql}) sub ORDER BY sub.id",  # noqa: S608
            [run.pk, *params],
        )
        pairs_total = cursor.rowcount
        cursor.execute(
            f"SELECT MIN(id), MAX(id) FROM (SELECT id, (ROW_NUMBER() OVER (ORDER BY id) - 1) / %s AS bucket "  # noqa: S608
            f"FROM {table} WHERE run_id = %s) numbered GROUP BY bucket ORDER BY bucket",
            [run.chunk_size, run.pk],
        )
        bounds = cursor.fetchall()
    if not pairs_total:
        raise ValidationError("The selection has no pairs: import pairs first or change the selection.")
    RunChunk.objects.bulk_create(
        RunChunk(run=run, index=i, first_candidate_id=lo, last_candidate_id=hi) for i, (lo, hi) in enumerate(bounds)
    )
    run.pairs_total = pairs_total
    run.samples_total = pairs_total * int(run.config_snapshot["samples_per_pair"])
    run.save(update_fields=["pairs_total", "samples_total"])
    if run.mode == LabelingRun.Mode.BATCH and run.samples_total > batches.BATCH_MAX_REQUESTS:
        raise ValidationError(
            f"A batch run sends at most {batches.BATCH_MAX_REQUESTS:,} requests (the OpenAI Batch API limit); this "
            f"selection needs {run.samples_total:,}. Split it into smaller runs or use online mode."
        )
    return len(bounds)


def enqueue_chunks_alternating(runs) -> None:
    """Queue the pending chunks of the runs in turn (run A chunk 0, run B chunk 0, run A chunk 1, …), so all of
    them show progress early (draft previews, red-team runs)."""
    per_run = [
        [(run.pk, index) for index in run.chunks.filter(status=RunChunk.Status.PENDING).values_list("index", flat=True)]
        for run in runs
        if run is not None and run.status == LabelingRun.Status.RUNNING
    ]
    for run in runs:
        if run is not None:
            RunChunk.objects.filter(run=run, status=RunChunk.Status.PENDING).update(queued_at=timezone.now())
    enqueue_each(
        "labeling.tasks.labeling_run_chunk", [item for group in zip_longest(*per_run) for item in group if item]
    )


def enqueue_run_chunks(run: LabelingRun, indexes) -> None:
    """Queue these chunks of the run, after the transaction commits (and note when, for the watchdog)."""
    indexes = list(indexes)
    RunChunk.objects.filter(run=run, index__in=indexes).update(queued_at=timezone.now())
    enqueue_each("labeling.tasks.labeling_run_chunk", ((run.pk, index) for index in indexes))


# --- processing, cancel and resume ---------------------------------------------------------------------------
def labeling_run_chunk_process(*, run_id: int, chunk_index: int) -> str:
    """Label one chunk (a worker's task); raises :class:`ChunkBusy` while another worker holds it. Each write of
    answers marks the run's page figures stale (a large running run's are kept); then the agreement figures over
    the run are stale (its answers and approvals changed), and a run that has ended has its page's figures
    computed by a worker."""
    outcome = chunk.process_chunk(
        run_id, chunk_index, on_write=lambda: figures.figures_mark_stale(run_ids=[run_id], kinds=figures.RUN_PAGE)
    )
    with transaction.atomic():
        figures.figures_mark_stale(run_ids=figures.version_labeling_runs(run_id))
        figures.figures_keep_ended(run_ids=[run_id])  # the run's last chunk: its page's figures, on a worker
    return outcome


def labeling_run_cancel(*, run: LabelingRun, user=None) -> LabelingRun:
    """Stop the run: queued chunks will not start, running ones start no new request and keep what they got."""
    updated = LabelingRun.objects.filter(
        pk=run.pk, status__in=[LabelingRun.Status.QUEUED, LabelingRun.Status.RUNNING]
    ).update(status=LabelingRun.Status.CANCELLED, finished_at=timezone.now())
    run.refresh_from_db()
    if not updated:
        raise ValidationError(f"Run #{run.pk} is {run.status}; only a queued or running run can be cancelled.")
    if run.mode == LabelingRun.Mode.BATCH:
        batches.batch_cancel_open(run=run)
    figures.figures_keep_ended(run_ids=[run.pk])
    return run


def labeling_run_resume(*, run: LabelingRun, user=None) -> LabelingRun:
    """Carry on a cancelled (or failed) run: its unfinished chunks are queued again; done work is kept. A run
    stuck while running (chunks neither done nor held by a live lease) gets those chunks queued again."""
    if run.status == LabelingRun.Status.RUNNING:
        return _resume_running(run)
    with transaction.atomic():
        updated = LabelingRun.objects.filter(
            pk=run.pk, status__in=[LabelingRun.Status.CANCELLED, LabelingRun.Status.FAILED]
        ).update(status=LabelingRun.Status.RUNNING, finished_at=None, error="")
        run.refresh_from_db()
        if not updated:
            raise ValidationError(
                f"Run #{run.pk} is {run.status}; only a cancelled, failed or stuck running run can be resumed."
            )
        pending = list(run.chunks.filter(status=RunChunk.Status.PENDING).values_list("index", flat=True))
        RunChunk.objects.filter(run=run, status=RunChunk.Status.PENDING).update(lease_until=None, lease_token="")
        if run.mode == LabelingRun.Mode.BATCH and pending:
            enqueue("labeling.tasks.labeling_run_batch_submit", run.pk)  # polls an open batch, or submits the rest
        else:
            enqueue_run_chunks(run, pending)
        if not pending:
            LabelingRun.objects.filter(pk=run.pk).finish_if_complete()
    return run


def _resume_running(run: LabelingRun) -> LabelingRun:
    """Queue again what a running run is waiting for in vain: its chunks that no live lease holds (online), or a
    submission that polls its open batch or submits the rest (batch). Live chunks are left to their workers."""
    from . import recovery  # recovery builds on this module

    now = timezone.now()
    if run.mode == LabelingRun.Mode.BATCH:
        with transaction.atomic():
            if run.batch_jobs.filter(status=BatchJob.Status.SUBMITTED).exists():
                recovery.batch_poll_restart(run.pk)
            else:
                enqueue("labeling.tasks.labeling_run_batch_submit", run.pk)
            note = f"Resumed at {recovery.clock(now)}: the batch was submitted or polled again."
            recovery.record(run.pk, 1, now, note)
        run.refresh_from_db()
        return run
    stuck = recovery.stuck_chunks(sweep=recovery.Sweep(now=now, queue_idle=True), run=run, grace=False)
    if not recovery.chunks_requeue(chunks=stuck, now=now, by="resuming"):
        if not run.chunks.filter(status=RunChunk.Status.PENDING).exists():
            LabelingRun.objects.filter(pk=run.pk).finish_if_complete()
        else:
            raise ValidationError(
                f"Run #{run.pk} is running and workers hold every chunk it is waiting for; nothing is stuck."
            )
    run.refresh_from_db()
    return run


def labeling_run_fail(*, run_id: int, error: str) -> None:
    """Record an unexpected failure of a run's task; the run can be resumed once the cause is fixed."""
    LabelingRun.objects.filter(pk=run_id).fail(error)
    figures.figures_keep_ended(run_ids=[run_id])
