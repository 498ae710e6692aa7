"""Labeling runs: create a run, process its chunks on workers, cancel and resume it.

A run materialises its pairs as pending candidates and cuts them into chunks (``RunChunk``); each chunk is one
Celery task. A chunk claims itself with a lease, asks the teacher for every (pair, sample) it does not have yet
(cache first), and writes samples, cache entries, candidates, counters and its own "done" in ONE transaction,
so a worker killed mid-chunk loses nothing that was committed and a re-delivered task redoes nothing.
"""

import functools
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from policyhub.models import PolicyVersion
from policyhub.prompts import build_system_prompt

from .. import routing, trust
from ..bulk import bulk_update
from ..models import (
    ApprovedBy,
    Candidate,
    GoldLabel,
    LabelingRun,
    Pair,
    ResponseCache,
    ReviewState,
    RunChunk,
    TeacherConfig,
    TeacherSample,
)
from ..storage import store_cache, store_samples
from ..teacher import (
    LabelSpace,
    TeacherAnswer,
    TeacherConfigError,
    TeacherRequest,
    get_provider,
    request_parameters,
)
from ..teacher.messages import build_messages, pair_facts

WATCH_INTERVAL = 2.0
#: A chunk stores its answers every this many answers or seconds, whichever comes first, while later requests
#: are still in flight: progress shows live and a killed worker loses at most one batch.
FLUSH_ANSWERS = 1000
FLUSH_SECONDS = 2.0
#: A chunk is prepared this many candidates at a time; the teacher starts on the first slice.
PREPARE_SLICE = 250


def _lease() -> timedelta:
    return timedelta(seconds=max(settings.LABELING_CHUNK_LEASE_SECONDS, 2 * WATCH_INTERVAL))


class ChunkBusy(Exception):
    """Another worker holds this chunk's lease; retry after ``retry_in`` seconds."""

    def __init__(self, retry_in: float):
        self.retry_in = retry_in
        super().__init__(f"chunk is leased by another worker for {retry_in:.0f} s more")


def label_space(version: PolicyVersion) -> LabelSpace:
    return LabelSpace(labels=tuple(version.label_keys), rule_ids=tuple(version.rule_ids))


def run_label_space(run: LabelingRun) -> LabelSpace:
    """The labels and rules frozen on the run (a draft preview's draft may change while it runs)."""
    content = run.version_content
    if content.get("labels"):
        return LabelSpace(
            labels=tuple(label["key"] for label in content["labels"]),
            rule_ids=tuple(rule["id"] for rule in content.get("rules", [])),
        )
    return label_space(run.policy_version)


def run_system_prompt(version: PolicyVersion) -> str:
    snapshot = getattr(version, "prompt_snapshot", None)
    return snapshot.system_prompt if snapshot else build_system_prompt(version)


# --- creating a run -----------------------------------------------------------------------------------------
def pairs_for_selection(selection: dict) -> QuerySet[Pair]:
    """``{"all": true}``, ``{"import_batch": id}``, ``{"pair_ids": [...]}``; optional ``"limit": n``."""
    allowed = {"all", "import_batch", "pair_ids", "limit"}
    if not isinstance(selection, dict) or not selection or set(selection) - allowed:
        raise ValidationError(
            "Choose the pairs: {'all': true}, {'import_batch': <id>} or {'pair_ids': [...]}, optionally with 'limit'."
        )
    pairs = Pair.objects.order_by("id")
    if "import_batch" in selection:
        pairs = pairs.filter(import_batch_id=selection["import_batch"])
    elif "pair_ids" in selection:
        ids = selection["pair_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise ValidationError("pair_ids must be a list of pair ids.")
        pairs = pairs.filter(id__in=ids)
    elif selection.get("all") is not True:
        raise ValidationError("Choose the pairs: {'all': true}, {'import_batch': <id>} or {'pair_ids': [...]}.")
    if "limit" in selection:
        limit = selection["limit"]
        if not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit must be a positive number of pairs.")
        pairs = pairs[:limit]
    return pairs


def labeling_run_create(
    *,
    version: PolicyVersion,
    config: TeacherConfig,
    selection: dict,
    user=None,
    thresholds: dict | None = None,
    idempotency_key: str = "",
    chunk_size: int = 500,
    mode: str = LabelingRun.Mode.ONLINE,
    reviewers_per_item: int = 1,
    purpose: str = LabelingRun.Purpose.LABELING,
    enqueue: bool = True,
) -> LabelingRun:
    """Create a run over the selected pairs and queue its chunks (after commit), or, in batch mode, its OpenAI
    batch submission. Same idempotency key and user: the same run comes back. Only a draft preview labels under a
    draft; ``enqueue=False`` leaves queueing the chunks to the caller (online mode)."""
    if idempotency_key:
        existing = LabelingRun.objects.filter(created_by=user, idempotency_key=idempotency_key).first()
        if existing:
            return existing
    if purpose not in LabelingRun.Purpose.values:
        raise ValidationError(f"purpose must be one of {', '.join(LabelingRun.Purpose.values)}, not {purpose!r}.")
    if purpose == LabelingRun.Purpose.DRAFT_PREVIEW:
        if version.status != PolicyVersion.Status.DRAFT:
            raise ValidationError(f"A draft preview labels under a draft; v{version.number} is {version.status}.")
    elif version.status != PolicyVersion.Status.PUBLISHED:
        raise ValidationError(f"Runs label under a published version; v{version.number} is {version.status}.")
    if purpose != LabelingRun.Purpose.LABELING and mode != LabelingRun.Mode.ONLINE:
        raise ValidationError("Gold-set scoring and draft previews run online.")
    try:
        limits = routing.thresholds_with_defaults(thresholds)
    except ValueError as error:
        raise ValidationError(str(error)) from None
    if not 1 <= chunk_size <= 10_000:
        raise ValidationError("chunk_size must be between 1 and 10,000.")
    if reviewers_per_item not in (1, 2, 3):
        raise ValidationError("reviewers_per_item must be 1, 2 or 3.")
    if mode not in LabelingRun.Mode.values:
        raise ValidationError(f"mode must be one of {', '.join(LabelingRun.Mode.values)}, not {mode!r}.")
    if mode == LabelingRun.Mode.BATCH and config.provider != TeacherConfig.Provider.OPENAI:
        raise ValidationError("Batch mode uses the OpenAI Batch API: choose a teacher config with the openai provider.")
    pairs = pairs_for_selection(selection)
    try:
        with transaction.atomic():
            run = _create_run(
                version, config, selection, user, limits, idempotency_key, chunk_size, pairs, mode,
                reviewers_per_item, purpose, enqueue,
            )  # fmt: skip
    except IntegrityError:
        existing = LabelingRun.objects.filter(created_by=user, idempotency_key=idempotency_key).first()
        if idempotency_key and existing:
            return existing
        raise
    return run


def _create_run(
    version,
    config,
    selection,
    user,
    limits,
    idempotency_key,
    chunk_size,
    pairs,
    mode,
    reviewers_per_item,
    purpose,
    enqueue,
) -> LabelingRun:
    run = LabelingRun.objects.create(
        mode=mode,
        purpose=purpose,
        version_content={"content_hash": version.content_hash, "labels": version.labels, "rules": version.rules},
        reviewers_per_item=reviewers_per_item,
        policy_version=version,
        teacher_config=config,
        config_snapshot=config.snapshot(),
        system_prompt=run_system_prompt(version),
        selection=selection,
        thresholds=limits,
        chunk_size=chunk_size,
        idempotency_key=idempotency_key,
        created_by=user,
        status=LabelingRun.Status.RUNNING,
        started_at=timezone.now(),
    )
    pair_sql, params = pairs.values("id").query.sql_with_params()
    table = Candidate._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (run_id, pair_id, status, label, label_distribution, samples_ok, trust, routing, "  # noqa: S608
            "reason_self_disagreement, reason_low_confidence, reason_teacher_disagreement, reason_gold_conflict, "
            "reason_trust_check_failed, error, updated_at, review_state, reviews_needed, reviews_done, "
            "approved_label, approved_by) "
            f"SELECT %s, sub.id, 'pending', '', %s, 0, %s, '', false, false, false, false, false, '', %s, '', 0, 0, "
            "'', '' "
            f"FROM ({pair_sql}) sub ORDER BY sub.id",
            [run.pk, "{}", "{}", timezone.now(), *params],
        )
        pairs_total = cursor.rowcount
        cursor.execute(
            f"SELECT MIN(id), MAX(id) FROM (SELECT id, (ROW_NUMBER() OVER (ORDER BY id) - 1) / %s AS bucket "  # noqa: S608
            f"FROM {table} WHERE run_id = %s) numbered GROUP BY bucket ORDER BY bucket",
            [chunk_size, run.pk],
        )
        bounds = cursor.fetchall()
    if not pairs_total:
        raise ValidationError("The selection has no pairs: import pairs first or change the selection.")
    RunChunk.objects.bulk_create(
        RunChunk(run=run, index=i, first_candidate_id=lo, last_candidate_id=hi) for i, (lo, hi) in enumerate(bounds)
    )
    run.pairs_total = pairs_total
    run.samples_total = pairs_total * config.samples_per_pair
    run.save(update_fields=["pairs_total", "samples_total"])
    if mode == LabelingRun.Mode.BATCH:
        from .batches import BATCH_MAX_REQUESTS

        if run.samples_total > BATCH_MAX_REQUESTS:
            raise ValidationError(
                f"A batch run sends at most {BATCH_MAX_REQUESTS:,} requests (the OpenAI Batch API limit); this "
                f"selection needs {run.samples_total:,}. Split it into smaller runs or use online mode."
            )
        _enqueue_batch_submit(run)
    elif enqueue:
        _enqueue_chunks(run, range(len(bounds)))
    return run


def _enqueue_chunks(run: LabelingRun, indexes) -> None:
    from ..tasks import labeling_run_chunk

    indexes = list(indexes)
    transaction.on_commit(lambda: [labeling_run_chunk.delay(run.pk, index) for index in indexes])


def _enqueue_batch_submit(run: LabelingRun) -> None:
    from ..tasks import labeling_run_batch_submit

    transaction.on_commit(lambda: labeling_run_batch_submit.delay(run.pk))


# --- cancel and resume --------------------------------------------------------------------------------------
def labeling_run_cancel(*, run: LabelingRun, user=None) -> LabelingRun:
    """Stop the run: queued chunks will not start, running ones start no new request and keep what they got."""
    updated = LabelingRun.objects.filter(
        pk=run.pk, status__in=[LabelingRun.Status.QUEUED, LabelingRun.Status.RUNNING]
    ).update(status=LabelingRun.Status.CANCELLED, finished_at=timezone.now())
    run.refresh_from_db()
    if not updated:
        raise ValidationError(f"Run #{run.pk} is {run.status}; only a queued or running run can be cancelled.")
    if run.mode == LabelingRun.Mode.BATCH:
        from .batches import batch_cancel_open

        batch_cancel_open(run=run)
    return run


def labeling_run_resume(*, run: LabelingRun, user=None) -> LabelingRun:
    """Carry on a cancelled (or failed) run: its unfinished chunks are queued again; done work is kept."""
    with transaction.atomic():
        updated = LabelingRun.objects.filter(
            pk=run.pk, status__in=[LabelingRun.Status.CANCELLED, LabelingRun.Status.FAILED]
        ).update(status=LabelingRun.Status.RUNNING, finished_at=None, error="")
        run.refresh_from_db()
        if not updated:
            raise ValidationError(f"Run #{run.pk} is {run.status}; only a cancelled or failed run can be resumed.")
        pending = list(run.chunks.filter(status=RunChunk.Status.PENDING).values_list("index", flat=True))
        RunChunk.objects.filter(run=run, status=RunChunk.Status.PENDING).update(lease_until=None, lease_token="")
        if run.mode == LabelingRun.Mode.BATCH and pending:
            _enqueue_batch_submit(run)  # polls an open batch, or submits what is still missing
        else:
            _enqueue_chunks(run, pending)
        if not pending:
            _finish_if_complete(run.pk)
    return run


# --- processing a chunk -------------------------------------------------------------------------------------
def cache_key(params: dict, messages: list[dict], sample_index: int) -> str:
    payload = json.dumps({"params": params, "messages": messages, "sample": sample_index}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CacheKeys:
    """:func:`cache_key` for the many requests of a run, which share the system prompt and the parameters: the
    JSON before the user message (the whole system prompt) is hashed once and the hash state copied per request,
    so a key costs the user message only. Same keys as :func:`cache_key` (sorted keys, default separators)."""

    def __init__(self, params: dict, system_prompt: str):
        head = '{"messages": [{"content": ' + json.dumps(system_prompt) + ', "role": "system"}, {"content": '
        self._system_prompt = system_prompt
        self._tail = ', "role": "user"}], "params": ' + json.dumps(params, sort_keys=True) + ', "sample": '
        self._head = hashlib.sha256(head.encode("utf-8"))
        self._params = params

    def key(self, messages: list[dict], sample_index: int) -> str:
        system, user = messages
        if system != {"role": "system", "content": self._system_prompt} or set(user) != {"role", "content"} or (
            user["role"] != "user"
        ):
            return cache_key(self._params, messages, sample_index)
        state = self._head.copy()
        state.update(f"{json.dumps(user['content'])}{self._tail}{int(sample_index)}}}".encode())
        return state.hexdigest()


def _claim(chunk: RunChunk, token: str) -> bool:
    now = timezone.now()
    return bool(
        RunChunk.objects.filter(pk=chunk.pk, status=RunChunk.Status.PENDING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_token=token))
        .update(lease_until=now + _lease(), lease_token=token)
    )


class _Watcher(threading.Thread):
    """Polls the run's status and renews the chunk's lease while the teacher works (in its own connection)."""

    def __init__(self, run_id: int, chunk_id: int, token: str):
        super().__init__(daemon=True)
        self.run_id, self.chunk_id, self.token = run_id, chunk_id, token
        self.stop_requested = threading.Event()
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            while not self.finished.wait(WATCH_INTERVAL):
                status = LabelingRun.objects.filter(pk=self.run_id).values_list("status", flat=True).first()
                if status is not None and status != LabelingRun.Status.RUNNING:  # None: not visible to us yet
                    self.stop_requested.set()
                RunChunk.objects.filter(pk=self.chunk_id, lease_token=self.token).update(
                    lease_until=timezone.now() + _lease()
                )
        finally:
            connection.close()


def labeling_run_chunk_process(*, run_id: int, chunk_index: int) -> str:
    """Label one chunk; returns what happened (for logs). Raises :class:`ChunkBusy` while leased elsewhere."""
    started = time.perf_counter()
    run = LabelingRun.objects.select_related("policy_version__policy").get(pk=run_id)
    chunk = RunChunk.objects.get(run=run, index=chunk_index)
    if chunk.status == RunChunk.Status.DONE:
        return "already done"
    if run.status != LabelingRun.Status.RUNNING:
        return f"run is {run.status}"
    token = uuid.uuid4().hex
    if not _claim(chunk, token):
        chunk.refresh_from_db()
        if chunk.status == RunChunk.Status.DONE:
            return "already done"
        raise ChunkBusy(max(1.0, (chunk.lease_until - timezone.now()).total_seconds()))

    space = run_label_space(run)
    try:
        provider = get_provider(run.config_snapshot, space)
    except TeacherConfigError as error:
        LabelingRun.objects.filter(pk=run.pk).update(
            status=LabelingRun.Status.FAILED, error=str(error), finished_at=timezone.now()
        )
        return f"failed: {error}"
    k = int(run.config_snapshot["samples_per_pair"])
    params = request_parameters(run.config_snapshot, space)
    prepared = _ChunkRequests(run, chunk, k, CacheKeys(params, run.system_prompt))
    flush = functools.partial(_flush, run, token, prepared, space, k, params)
    watcher = _Watcher(run.pk, chunk.pk, token)
    watcher.start()
    written, last_flush, lost, pending = 0, time.monotonic(), False, {}
    try:
        for answer in provider.answer_stream(prepared, should_stop=watcher.stop_requested.is_set):
            pending[answer.key] = answer
            if len(pending) >= FLUSH_ANSWERS or time.monotonic() - last_flush >= FLUSH_SECONDS:
                pending.update(prepared.take_cached())
                if flush(pending, final=False) is None:
                    lost = True
                    break
                written, pending, last_flush = written + len(pending), {}, time.monotonic()
    finally:
        watcher.finished.set()
        watcher.join()
    asked = time.perf_counter()
    pending.update(prepared.take_cached())
    outcome = None if lost else flush(pending, final=True)
    if outcome is None:
        return "lost the chunk's lease to another worker; it carries on"
    written += len(pending)
    _finish_if_complete(run.pk)
    return (
        f"{written} samples written; chunk {outcome} (first request after {prepared.first_at - started:.2f} s, "
        f"prepare {prepared.seconds:.1f} s alongside; teacher and writes {asked - started:.1f} s for "
        f"{prepared.requested} requests, last write {time.perf_counter() - asked:.1f} s)"
    )


class _ChunkRequests:
    """A chunk's requests, prepared PREPARE_SLICE candidates at a time: iterating reads a slice (candidates, pair
    facts, samples already stored, cached answers) and yields the requests the cache does not answer, so the
    teacher starts on the first slice while the next ones are read. ``candidates``, ``facts`` and ``keys`` grow
    as it goes; cached answers wait in :meth:`take_cached`."""

    def __init__(self, run: LabelingRun, chunk: RunChunk, k: int, key_of: CacheKeys):
        self.run, self.chunk, self.k, self.key_of = run, chunk, k, key_of
        self.candidates: dict[int, Candidate] = {}  # by pair id
        self.facts: dict[int, tuple[dict, dict]] = {}
        self.keys: dict[tuple[int, int], str] = {}  # request key -> cache key
        self._cached: dict = {}
        self.requested, self.seconds, self.first_at = 0, 0.0, time.perf_counter()

    def in_chunk(self) -> QuerySet[Candidate]:
        return Candidate.objects.filter(
            run=self.run, id__gte=self.chunk.first_candidate_id, id__lte=self.chunk.last_candidate_id
        )

    def take_cached(self) -> dict:
        taken, self._cached = self._cached, {}
        return taken

    def __iter__(self) -> Iterator[TeacherRequest]:
        after, first = self.chunk.first_candidate_id - 1, True
        while True:
            started = time.perf_counter()
            rows = self.in_chunk().filter(id__gt=after).order_by("id")
            candidates = list(rows[:PREPARE_SLICE])
            if not candidates:
                return
            after = candidates[-1].pk
            in_slice = self.in_chunk().filter(id__gte=candidates[0].pk, id__lte=after)
            facts = pair_facts(in_slice)
            have = set(
                TeacherSample.objects.filter(run=self.run, pair_id__in=in_slice.values("pair_id")).values_list(
                    "pair_id", "sample_index"
                )
            )
            requests, keys = [], {}
            for candidate in candidates:
                self.candidates[candidate.pair_id] = candidate
                member, job = facts[candidate.pair_id]
                messages = build_messages(self.run.system_prompt, member, job)
                for index in range(self.k):
                    if (candidate.pair_id, index) in have:
                        continue
                    request = TeacherRequest(
                        key=(candidate.pair_id, index), messages=messages, sample_index=index,
                        facts={"member": member, "job": job},
                    )  # fmt: skip
                    requests.append(request)
                    keys[request.key] = self.key_of.key(messages, index)
            self.facts.update(facts)
            self.keys.update(keys)
            cached = _from_cache(keys, requests)
            self._cached.update(cached)
            misses = [r for r in requests if r.key not in cached]
            self.requested += len(misses)
            self.seconds += time.perf_counter() - started
            if first:
                self.first_at, first = time.perf_counter(), False
            yield from misses


def _from_cache(keys: dict, requests: list[TeacherRequest]) -> dict:
    found = {}
    if not keys:
        return found
    by_key = {row.key: row for row in ResponseCache.objects.filter(key__in=set(keys.values()))}
    for request in requests:
        row = by_key.get(keys[request.key])
        if row:
            found[request.key] = TeacherAnswer(
                key=request.key,
                label=row.answer["label"],
                rationale=row.answer["rationale"],
                cited_rules=row.answer["cited_rules"],
                label_probs=row.answer.get("label_probs"),
                raw=row.answer.get("raw", ""),
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
                attempts=0,
                cached=True,
            )
    return found


def price_factor(snapshot: dict, mode: str) -> Decimal:
    """What share of the listed prices a run pays: the batch discount in batch mode (configs saved before the
    factor existed get the Batch API's half price), else all of it."""
    if mode != LabelingRun.Mode.BATCH:
        return Decimal(1)
    return Decimal(snapshot.get("batch_price_factor", "0.5"))


def _price(snapshot: dict, input_tokens: int, output_tokens: int, mode: str = LabelingRun.Mode.ONLINE) -> Decimal:
    million = Decimal(1_000_000)
    return (
        (
            Decimal(input_tokens) * Decimal(snapshot["price_input_per_mtok"])
            + Decimal(output_tokens) * Decimal(snapshot["price_output_per_mtok"])
        )
        * price_factor(snapshot, mode)
        / million
    )


def _flush(run, token, prepared, space, k, params, answers, *, final: bool) -> str | None:
    """Store a batch of a chunk's answers in one transaction while this worker still holds the chunk's lease:
    samples, cache, the candidates they complete, the run's counters; at the end, the chunk's own state.

    Returns None if the lease was lost (another worker has the chunk: write nothing), else "done" /
    "stopped early" for the final flush and "" for the others.
    """
    with transaction.atomic():
        locked = RunChunk.objects.select_for_update().get(pk=prepared.chunk.pk)
        if locked.status == RunChunk.Status.DONE or locked.lease_token != token:
            return None
        if answers:
            touched = [prepared.candidates[pair_id] for pair_id in {key[0] for key in answers}]
            _write_answers(run, touched, prepared.facts, answers, prepared.keys, space, k, params)
        if not final:
            return ""
        in_chunk = prepared.in_chunk()  # all of it: a cancelled chunk may not have read every slice
        have = TeacherSample.objects.filter(run=run, pair_id__in=in_chunk.values("pair_id")).count()
        complete = have >= in_chunk.count() * k
        locked.lease_until, locked.lease_token = None, ""
        if complete:
            locked.status, locked.finished_at = RunChunk.Status.DONE, timezone.now()
        locked.save()
        return "done" if complete else "stopped early"


def _write_answers(run, candidates, facts, answers, keys, space, k, params) -> bool:
    """Write answers (keyed (pair id, sample index)) as samples, cache the valid fresh ones, aggregate the
    candidates and add to the run's counters; call inside a transaction. Returns True if every candidate has all
    its samples. Shared by online chunks and batch ingestion."""
    store_samples(run.pk, answers)
    store_cache(params["model"], keys, [a for a in answers.values() if a.ok and not a.cached])
    complete = _aggregate_candidates(run, candidates, facts, space, k, answers)
    paid = [a for a in answers.values() if not a.cached]
    input_tokens = sum(a.input_tokens for a in paid)
    output_tokens = sum(a.output_tokens for a in paid)
    LabelingRun.objects.filter(pk=run.pk).update(
        samples_done=F("samples_done") + sum(1 for a in answers.values() if a.ok),
        samples_failed=F("samples_failed") + sum(1 for a in answers.values() if not a.ok),
        samples_cached=F("samples_cached") + sum(1 for a in answers.values() if a.cached),
        input_tokens=F("input_tokens") + input_tokens,
        output_tokens=F("output_tokens") + output_tokens,
        cost=F("cost") + _price(run.config_snapshot, input_tokens, output_tokens, run.mode),
    )
    return complete


def _samples_by_pair(run, pair_ids: list[int], k: int, answers: dict) -> dict[int, list]:
    """Each pair's stored samples. ``answers`` were just stored: a pair whose K samples are all among them is
    taken from memory, the others are read back (only the fields aggregation and trust checks use)."""
    by_pair: dict[int, list] = {}
    read_back = []
    for pair_id in pair_ids:
        mine = [answers.get((pair_id, index)) for index in range(k)]
        if all(mine):
            by_pair[pair_id] = mine
        else:
            read_back.append(pair_id)
    if read_back:
        fields = ("pair_id", "sample_index", "label", "rationale", "cited_rules", "label_probs", "error_kind", "error")
        for sample in TeacherSample.objects.filter(run=run, pair_id__in=read_back).only(*fields):
            by_pair.setdefault(sample.pair_id, []).append(sample)
    return by_pair


def _aggregate_candidates(run, candidates, facts, space, k, answers: dict | None = None) -> bool:
    """Aggregate every given candidate (a chunk's, or any of the run's) whose K samples are all in; returns True
    if all of them are."""
    pair_ids = [c.pair_id for c in candidates]
    by_pair = _samples_by_pair(run, pair_ids, k, answers or {})
    _lock_routing_against_other_teachers(run)
    others = _other_run_labels(run, pair_ids)
    gold = dict(
        GoldLabel.objects.filter(policy=run.policy_version.policy, pair_id__in=pair_ids).values_list("pair_id", "label")
    )
    vocab = trust.vocabulary(facts.values())
    limits = routing.thresholds_with_defaults(run.thresholds)
    now = timezone.now()
    changed, all_complete, disagreeing = [], True, set()
    for candidate in candidates:
        samples = by_pair.get(candidate.pair_id, [])
        if len(samples) < k:
            all_complete = False
            continue
        ok = [s for s in samples if s.ok]
        candidate.samples_ok = len(ok)
        if not ok:
            candidate.status, candidate.routing = Candidate.Status.FAILED, Candidate.Routing.NONE
            candidate.error = "; ".join(sorted({f"{s.error_kind}: {s.error}"[:300] for s in samples}))
            changed.append(candidate)
            continue
        member, job = facts[candidate.pair_id]
        checks = trust.combine([trust.check_answer(s, space=space, member=member, job=job, vocab=vocab) for s in ok])
        trust_ok = all(check["ok"] for check in checks.values())
        agg = routing.aggregate(ok, space.labels, samples_requested=k)
        other_labels = others.get(candidate.pair_id, set())
        routing.route(
            agg, thresholds=limits, samples_requested=k, trust_ok=trust_ok, other_labels=other_labels,
            gold_label=gold.get(candidate.pair_id),
        )  # fmt: skip
        if other_labels - {agg.label}:
            disagreeing.add(candidate.pair_id)
        candidate.status, candidate.label, candidate.error = Candidate.Status.LABELED, agg.label, ""
        candidate.label_distribution, candidate.vote_share, candidate.confidence = (
            agg.distribution, agg.vote_share, agg.confidence,
        )  # fmt: skip
        candidate.trust, candidate.trust_ok, candidate.routing = checks, trust_ok, agg.routing
        _set_review_state(candidate, run, now)
        for reason in Candidate.REASONS:
            setattr(candidate, f"reason_{reason}", reason in agg.reasons)
        changed.append(candidate)
    for candidate in changed:
        candidate.updated_at = now
    bulk_update(
        Candidate,
        changed,
        ["status", "label", "label_distribution", "vote_share", "confidence", "samples_ok", "trust", "trust_ok",
         "routing", "error", *[f"reason_{r}" for r in Candidate.REASONS], "updated_at", "review_state",
         "reviews_needed", "approved_label", "approved_by", "approved_at"],
    )  # fmt: skip
    if disagreeing and run.purpose == LabelingRun.Purpose.LABELING:  # the other teacher's candidates disagree too
        Candidate.objects.filter(
            run__policy_version=run.policy_version,
            pair_id__in=disagreeing,
            status=Candidate.Status.LABELED,
            run__purpose=LabelingRun.Purpose.LABELING,
        ).exclude(run=run).update(
            reason_teacher_disagreement=True, routing=Candidate.Routing.NEEDS_REVIEW, updated_at=timezone.now()
        )
        Candidate.objects.filter(
            run__policy_version=run.policy_version, pair_id__in=disagreeing, review_state=ReviewState.NONE,
            routing=Candidate.Routing.NEEDS_REVIEW, run__purpose=LabelingRun.Purpose.LABELING,
        ).exclude(run=run).update(
            review_state=ReviewState.PENDING, approved_label="", approved_by="", approved_at=None,
            reviews_needed=Subquery(
                LabelingRun.objects.filter(pk=OuterRef("run_id")).values("reviewers_per_item")[:1]
            ),
        )  # fmt: skip
    return all_complete


def _set_review_state(candidate: Candidate, run: LabelingRun, now) -> None:
    """Auto-accepted: the teacher's label is approved. Needs review: queue it, unless humans already reviewed it.
    Scoring and preview runs only measure: nothing of theirs is queued or approved."""
    if run.purpose != LabelingRun.Purpose.LABELING:
        return
    if candidate.reviews_done or candidate.review_state in (ReviewState.ADJUDICATION, ReviewState.DONE):
        return
    if candidate.routing == Candidate.Routing.AUTO_ACCEPTED:
        candidate.review_state, candidate.reviews_needed = ReviewState.NONE, 0
        candidate.approved_label, candidate.approved_by, candidate.approved_at = (
            candidate.label, ApprovedBy.TEACHER, now,
        )  # fmt: skip
    else:
        candidate.review_state, candidate.reviews_needed = ReviewState.PENDING, run.reviewers_per_item
        candidate.approved_label, candidate.approved_by, candidate.approved_at = "", "", None


#: First key of the transaction-level advisory lock that serialises routing between teachers of one version.
ROUTING_LOCK_NAMESPACE = 0x7EAC


def _lock_routing_against_other_teachers(run: LabelingRun) -> None:
    """``teacher_disagreement`` compares a pair's label with the other teachers' committed labels; two runs writing
    the same pair at once would each miss the other. So routing takes a transaction-level advisory lock on the
    policy version before reading their labels: writes of one version serialise from here to commit, and the later
    one (READ COMMITTED: a fresh snapshot per statement) sees the earlier one's labels and flags both. Held for the
    end of a flush only (tens of milliseconds). SQLite runs one writer at a time anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ROUTING_LOCK_NAMESPACE, run.policy_version_id])


def _other_run_labels(run: LabelingRun, pair_ids: list[int]) -> dict[int, set[str]]:
    labels: dict[int, set[str]] = {}
    if run.purpose != LabelingRun.Purpose.LABELING:
        return labels
    rows = (
        Candidate.objects.filter(
            run__policy_version=run.policy_version,
            pair_id__in=pair_ids,
            status=Candidate.Status.LABELED,
            run__purpose=LabelingRun.Purpose.LABELING,
        )
        .exclude(run=run)
        .exclude(run__teacher_config=run.teacher_config)
        .values_list("pair_id", "label")
    )
    for pair_id, label in rows:
        labels.setdefault(pair_id, set()).add(label)
    return labels


def _finish_if_complete(run_id: int) -> None:
    LabelingRun.objects.filter(pk=run_id, status=LabelingRun.Status.RUNNING).exclude(
        chunks__status=RunChunk.Status.PENDING
    ).update(status=LabelingRun.Status.SUCCEEDED, finished_at=timezone.now())


def labeling_run_fail(*, run_id: int, error: str) -> None:
    """Record an unexpected failure of a chunk; the run can be resumed once the cause is fixed."""
    LabelingRun.objects.filter(pk=run_id, status=LabelingRun.Status.RUNNING).update(
        status=LabelingRun.Status.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def teacher_config_save(*, form, user) -> TeacherConfig:
    """Save a teacher config from a validated form (runs keep their own snapshot, so edits are safe)."""
    config = form.save(commit=False)
    if config.created_by_id is None:
        config.created_by = user
    config.full_clean()
    config.save()
    return config
