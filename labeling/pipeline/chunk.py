"""An online chunk on a worker: claim it with a lease, ask the teacher for every (pair, sample) it still needs (cache
first), and store the answers while later requests are in flight.

The chunk's requests are prepared ``PREPARE_SLICE`` candidates at a time (``FIRST_SLICE`` first), so the teacher
starts on the first slice while the next ones are read. Answers are stored every ``FLUSH_ANSWERS`` answers or
``FLUSH_SECONDS`` (and once more when only the last answers are on their way, so little is left to store after
the last one): samples, cache, candidates and counters in one transaction that first checks this worker still
holds the lease, and the last flush also marks the chunk done. A worker killed mid-chunk loses at most one flush; a
re-delivered task redoes nothing that was stored. A watcher thread renews the lease and notices a cancelled run. A
pair's missing samples are one request for that many choices (``n``) unless the config remembers that its endpoint
refuses ``n > 1``; a provider that finds out is remembered on the config (:func:`remember_n_support`). In a run with
a judge (:mod:`.judge`) each flush's answers are judged first, and their verdicts are stored with them.
"""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from policyhub import leases

from ..models import Candidate, LabelingRun, RunChunk, TeacherConfig, TeacherSample
from ..teacher import TeacherConfigError, TeacherRequest, get_provider
from .answers import write_answers
from .context import RunContext
from .judge import Judge, Judged
from .requests import answer_from_cache, chunk_candidates, missing_work

WATCH_INTERVAL = 2.0
#: A chunk stores its answers every this many answers or seconds, whichever comes first, while later requests
#: are still in flight: progress shows live and a killed worker loses at most one batch.
FLUSH_ANSWERS = 1000
FLUSH_SECONDS = 2.0
#: A chunk is prepared this many candidates at a time; the teacher starts on the first slice, which is smaller:
#: preparing costs per candidate, and with ``n = K`` a slice of 250 is only 250 requests, so a full first slice
#: would keep the teacher waiting for a tenth of an ideal 1,000-pair chunk (the following slices are prepared
#: while the first ones are in flight).
PREPARE_SLICE = 250
FIRST_SLICE = 40
#: The answers a chunk must hold for it to store them early, once only the last ones are on their way: fewer make
#: a short final write anyway, and an extra transaction costs more than it saves.
EARLY_FLUSH_ANSWERS = 250


class ChunkBusy(Exception):
    """Another worker holds this chunk's lease; retry after ``retry_in`` seconds."""

    def __init__(self, retry_in: float):
        self.retry_in = retry_in
        super().__init__(f"chunk is leased by another worker for {retry_in:.0f} s more")


def lease() -> timedelta:
    return timedelta(seconds=max(settings.LABELING_CHUNK_LEASE_SECONDS, 2 * WATCH_INTERVAL))


def claim(chunk: RunChunk, token: str) -> bool:
    """Take the chunk's lease for ``token`` unless another live lease holds it."""
    return leases.lease_claim(RunChunk, chunk.pk, token, lease().total_seconds(), status=RunChunk.Status.PENDING)


class Watcher(leases.Heartbeat):
    """Renews the chunk's lease and polls the run's status while the teacher works (in its own connection)."""

    def __init__(self, run_id: int, chunk_id: int, token: str):
        super().__init__(RunChunk, chunk_id, token, lease().total_seconds(), interval=WATCH_INTERVAL)
        self.run_id = run_id
        self.stop_requested = threading.Event()

    def beat(self) -> None:
        status = LabelingRun.objects.filter(pk=self.run_id).values_list("status", flat=True).first()
        if status is not None and status != LabelingRun.Status.RUNNING:  # None: not visible to us yet
            self.stop_requested.set()
        super().beat()


class ChunkRequests:
    """A chunk's requests, prepared PREPARE_SLICE candidates at a time: iterating reads a slice (candidates, pair
    facts, samples already stored, cached answers) and yields the requests the cache does not answer. The
    ``candidates``, ``facts`` and ``keys`` seen so far grow as it goes; cached answers wait in :meth:`take_cached`."""

    def __init__(self, ctx: RunContext, chunk: RunChunk):
        self.ctx, self.chunk = ctx, chunk
        self.candidates: dict[int, Candidate] = {}  # by pair id
        self.facts: dict[int, tuple[dict, dict]] = {}
        self.keys: dict[tuple[int, int], str] = {}  # request key -> cache key
        self._cached: dict = {}
        self.requested, self.seconds, self.first_at = 0, 0.0, time.perf_counter()
        self.answers_asked, self.read_all = 0, False  # answers asked for by the requests yielded so far; all?

    def in_chunk(self) -> QuerySet[Candidate]:
        return chunk_candidates(self.chunk)

    def take_cached(self) -> dict:
        taken, self._cached = self._cached, {}
        return taken

    def __iter__(self) -> Iterator[TeacherRequest]:
        after, first = self.chunk.first_candidate_id - 1, True
        while True:
            started = time.perf_counter()
            size = FIRST_SLICE if first else PREPARE_SLICE
            candidates = list(self.in_chunk().filter(id__gt=after).order_by("id")[:size])
            if not candidates:
                self.read_all = True
                return
            after = candidates[-1].pk
            in_slice = self.in_chunk().filter(id__gte=candidates[0].pk, id__lte=after)
            work = answer_from_cache(missing_work(self.ctx, in_slice, candidates))
            self.candidates.update((c.pair_id, c) for c in candidates)
            self.facts.update(work.facts)
            self.keys.update(work.keys)
            self._cached.update(work.cached)
            self.requested += len(work.requests)
            self.answers_asked += sum(len(request.answer_keys) for request in work.requests)
            self.seconds += time.perf_counter() - started
            if first:
                self.first_at, first = time.perf_counter(), False
            yield from work.requests


def flush(
    ctx: RunContext,
    token: str,
    prepared: ChunkRequests,
    answers: dict,
    *,
    final: bool,
    judged: Judged | None = None,
    on_write: Callable[[], None] | None = None,
) -> str | None:
    """Store a batch of a chunk's answers in one transaction while this worker still holds the chunk's lease:
    samples, cache, the candidates they complete, the run's counters, then ``on_write()`` (the caller's part of
    the same transaction); at the end, the chunk's own state.

    Returns None if the lease was lost (another worker has the chunk: write nothing), else "done" /
    "stopped early" for the final flush and "" for the others.
    """
    with transaction.atomic():
        locked = RunChunk.objects.select_for_update().get(pk=prepared.chunk.pk)
        if locked.status == RunChunk.Status.DONE or locked.lease_token != token:
            return None
        if answers:
            touched = [prepared.candidates[pair_id] for pair_id in {key[0] for key in answers}]
            write_answers(ctx, touched, prepared.facts, answers, prepared.keys, judged)
            if on_write is not None:
                on_write()
        if not final:
            return ""
        in_chunk = prepared.in_chunk()  # all of it: a cancelled chunk may not have read every slice
        have = TeacherSample.objects.filter(run=ctx.run, pair_id__in=in_chunk.values("pair_id")).count()
        complete = have >= in_chunk.count() * ctx.k
        locked.lease_until, locked.lease_token = None, ""
        if complete:
            locked.status, locked.finished_at = RunChunk.Status.DONE, timezone.now()
        locked.save()
        return "done" if complete else "stopped early"


def process_chunk(run_id: int, chunk_index: int, *, on_write: Callable[[], None] | None = None) -> str:
    """Label one chunk; returns what happened (for logs). Raises :class:`ChunkBusy` while leased elsewhere.
    ``on_write``: called in each transaction that stores answers, after them."""
    started = time.perf_counter()
    run = LabelingRun.objects.select_related("policy_version__policy").get(pk=run_id)
    chunk = RunChunk.objects.get(run=run, index=chunk_index)
    if chunk.status == RunChunk.Status.DONE:
        return "already done"
    if run.status != LabelingRun.Status.RUNNING:
        return f"run is {run.status}"
    token = uuid.uuid4().hex
    if not claim(chunk, token):
        chunk.refresh_from_db()
        if chunk.status == RunChunk.Status.DONE:
            return "already done"
        raise ChunkBusy(max(1.0, (chunk.lease_until - timezone.now()).total_seconds()))
    ctx = RunContext.of(run)
    try:
        provider = get_provider(run.config_snapshot, ctx.space, n_supported=known_n_support(run))
        judge = _judge_of(run)
    except TeacherConfigError as error:
        LabelingRun.objects.filter(pk=run.pk).update(
            status=LabelingRun.Status.FAILED, error=str(error), finished_at=timezone.now()
        )
        return f"failed: {error}"
    prepared = ChunkRequests(ctx, chunk)
    try:
        written, outcome, asked = _label(ctx, token, provider, prepared, judge, on_write)
    except BaseException:
        # E.g. the database dropped the connection: the task's retry may claim the chunk at once instead of
        # waiting out the lease (and the watchdog), and redoes only what no flush stored.
        leases.lease_release(RunChunk, chunk.pk, token, after_error=True)
        raise
    if outcome is None:
        return "lost the chunk's lease to another worker; it carries on"
    LabelingRun.objects.filter(pk=run.pk).finish_if_complete()
    return (
        f"{written} samples written; chunk {outcome} (first request after {prepared.first_at - started:.2f} s, "
        f"prepare {prepared.seconds:.1f} s alongside; teacher and writes {asked - started:.1f} s for "
        f"{prepared.requested} requests, last write {time.perf_counter() - asked:.1f} s)"
    )


def known_n_support(run: LabelingRun) -> bool | None:
    """What the run's config remembers of its endpoint's ``n`` (read live: another chunk may have found out)."""
    return TeacherConfig.objects.filter(pk=run.teacher_config_id).values_list("n_supported", flat=True).first()


def remember_n_support(run: LabelingRun, provider) -> bool:
    """Remember on the run's config what the provider found out about its endpoint's ``n`` (the first finding
    stands; a base URL or model change clears it). True once there is nothing (more) to remember."""
    learned = getattr(provider, "n_learned", None)
    if learned is None:
        return False
    remember_n(run, learned)
    return True


def remember_n(run: LabelingRun, supported: bool) -> None:
    """Remember on the run's config whether its endpoint takes ``n > 1`` unless it is known already (online chunks
    and batch ingestion find out; the first finding stands)."""
    TeacherConfig.objects.filter(pk=run.teacher_config_id, n_supported__isnull=True).update(
        n_supported=supported, n_checked_at=timezone.now()
    )


def _judge_of(run: LabelingRun) -> Judge | None:
    try:
        return Judge.of(run)
    except TeacherConfigError as error:
        raise TeacherConfigError(f"The judge cannot be used: {error}") from None


def _label(
    ctx: RunContext, token: str, provider, prepared: ChunkRequests, judge: Judge | None = None, on_write=None
) -> tuple[int, str | None, float]:
    """Stream the chunk's answers from the teacher and flush them as they come (judged first, in a run with a
    judge, while the watcher still renews the lease); returns (samples written, the final flush's outcome or None
    if the lease was lost, when the teacher finished)."""

    def judged(answers: dict) -> Judged | None:
        return judge.judge(prepared.facts, answers) if judge else None

    watcher = Watcher(ctx.run.pk, prepared.chunk.pk, token)
    watcher.start()
    written, last_flush, pending, remembered = 0, time.monotonic(), {}, False
    # Once only the last answers are on their way, what came before is stored at once: the write left after the
    # last answer (the chunk's tail) is theirs, not up to FLUSH_ANSWERS.
    last = provider.answers_after(ctx.k) if hasattr(provider, "answers_after") else 0
    received, ending = 0, False
    try:
        for answer in provider.answer_stream(prepared, should_stop=watcher.stop_requested.is_set):
            pending[answer.key] = answer
            received += 1
            remembered = remembered or remember_n_support(ctx.run, provider)
            due = len(pending) >= FLUSH_ANSWERS or time.monotonic() - last_flush >= FLUSH_SECONDS
            if not ending and prepared.read_all and prepared.answers_asked - received <= last:
                ending, due = True, due or len(pending) >= EARLY_FLUSH_ANSWERS
            if due:
                pending.update(prepared.take_cached())
                if flush(ctx, token, prepared, pending, final=False, judged=judged(pending), on_write=on_write) is None:
                    return written, None, time.perf_counter()
                written, pending, last_flush = written + len(pending), {}, time.monotonic()
        asked = time.perf_counter()
        pending.update(prepared.take_cached())
        verdicts = judged(pending)
    finally:
        watcher.finished.set()
        watcher.join()
    outcome = flush(ctx, token, prepared, pending, final=True, judged=verdicts, on_write=on_write)
    return written + len(pending), outcome, asked
