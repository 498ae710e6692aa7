"""Runs on the gold set: score a published version × teacher config, and preview a draft before publishing.

Both reuse the labeling run machinery (chunks on Celery, the response cache, samples and candidates) with a run
``purpose`` that keeps them out of the review queue, teacher-disagreement routing and exports. A preview labels the
gold pairs under the draft as it is when the preview starts (the run freezes its system prompt and content) and
under the current published version with the same config, chunk by chunk in alternation, so the page can show
figures and flips while both runs are still going.
"""

from itertools import zip_longest

from django.core.exceptions import PermissionDenied
from django.db import transaction

from policyhub import roles
from policyhub.models import PolicyVersion

from ..models import DraftPreview, GoldLabel, LabelingRun, RunChunk, TeacherConfig
from ..teacher import TeacherConfigError, get_provider
from .gold import GoldError
from .runs import label_space, labeling_run_create

#: Pairs per chunk of a gold run: every chunk commits its answers, so small chunks mean early figures.
GOLD_CHUNK_PAIRS = 10


def _require_owner(user) -> None:
    if not roles.has_role(user, roles.POLICY_OWNER):
        raise PermissionDenied("Only policy owners can score on the gold set or preview drafts.")


def _gold_pair_ids(policy) -> list[int]:
    ids = list(GoldLabel.objects.filter(policy=policy).order_by("pair_id").values_list("pair_id", flat=True))
    if not ids:
        raise GoldError(f"The gold set of {policy.name} is empty: mark reviewed or adjudicated items as gold first.")
    return ids


def check_teacher_config(config: TeacherConfig, version: PolicyVersion) -> None:
    """Refuse a config the teacher cannot be used with (e.g. no API key) before anything is queued."""
    try:
        get_provider(config.snapshot(), label_space(version))
    except TeacherConfigError as error:
        raise GoldError(f"Teacher config {config.name} cannot be used: {error}") from None


def gold_score_start(*, user, version: PolicyVersion, config: TeacherConfig) -> LabelingRun:
    """Label the policy's gold pairs under a published version with a config; the run is the score."""
    _require_owner(user)
    if version.status != PolicyVersion.Status.PUBLISHED:
        raise GoldError(f"Score a published version; v{version.number} is {version.status}.")
    pair_ids = _gold_pair_ids(version.policy)
    check_teacher_config(config, version)
    return labeling_run_create(
        version=version, config=config, selection={"pair_ids": pair_ids}, user=user,
        purpose=LabelingRun.Purpose.GOLD_SCORE, chunk_size=GOLD_CHUNK_PAIRS,
    )  # fmt: skip


def _reusable_score(version: PolicyVersion, config: TeacherConfig, pair_ids: list[int]) -> LabelingRun | None:
    """A finished gold score of this version with this exact config over (at least) these pairs."""
    runs = LabelingRun.objects.filter(
        policy_version=version, teacher_config=config, purpose=LabelingRun.Purpose.GOLD_SCORE,
        status=LabelingRun.Status.SUCCEEDED, config_snapshot=config.snapshot(),
    ).order_by("-created_at")  # fmt: skip
    for run in runs[:5]:
        if run.candidates.filter(pair_id__in=pair_ids).count() == len(pair_ids):
            return run
    return None


def draft_preview_start(*, user, draft: PolicyVersion, config: TeacherConfig) -> DraftPreview:
    """Freeze the draft as it is now and label the gold set under it, and under the published version (unless a
    finished score of it with this config covers the gold set already)."""
    _require_owner(user)
    with transaction.atomic():
        draft = PolicyVersion.objects.select_for_update().select_related("policy").get(pk=draft.pk)
        if not draft.is_draft:
            raise GoldError(f"v{draft.number} is {draft.status}, not a draft: nothing to preview.")
        policy = draft.policy
        pair_ids = _gold_pair_ids(policy)
        check_teacher_config(config, draft)
        published = policy.versions.filter(status=PolicyVersion.Status.PUBLISHED).order_by("-number").first()
        selection = {"pair_ids": pair_ids}
        draft_run = labeling_run_create(
            version=draft, config=config, selection=selection, user=user, enqueue=False,
            purpose=LabelingRun.Purpose.DRAFT_PREVIEW, chunk_size=GOLD_CHUNK_PAIRS,
        )  # fmt: skip
        published_run = None
        if published is not None:
            published_run = _reusable_score(published, config, pair_ids) or labeling_run_create(
                version=published, config=config, selection=selection, user=user, enqueue=False,
                purpose=LabelingRun.Purpose.GOLD_SCORE, chunk_size=GOLD_CHUNK_PAIRS,
            )  # fmt: skip
        preview = DraftPreview.objects.create(
            policy=policy, draft=draft, draft_revision=draft.revision, content_hash=draft.content_hash,
            teacher_config=config, draft_run=draft_run, published_version=published, published_run=published_run,
            gold_pairs=len(pair_ids), created_by=user,
        )  # fmt: skip
        _enqueue_alternating([draft_run, published_run])
    return preview


def _enqueue_alternating(runs: list[LabelingRun | None]) -> None:
    """Queue the pending chunks of the runs in turn (draft chunk 0, published chunk 0, draft chunk 1, …)."""
    from ..tasks import labeling_run_chunk

    per_run = [
        [(run.pk, index) for index in run.chunks.filter(status=RunChunk.Status.PENDING).values_list("index", flat=True)]
        for run in runs
        if run is not None and run.status == LabelingRun.Status.RUNNING
    ]
    order = [item for group in zip_longest(*per_run) for item in group if item is not None]
    transaction.on_commit(lambda: [labeling_run_chunk.delay(run_id, index) for run_id, index in order])
