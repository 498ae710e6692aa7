"""Previewing a draft before publishing: label the gold set under the draft as it is now and under the published
version with the same teacher config, so the policy owner sees accuracy against gold and the label flips.

Both are runs of the run engine (``purpose=draft_preview`` for the draft, a gold score for the published version,
reused when a finished one with this config covers the gold set). The draft run freezes the draft's system prompt
and content. When the policy has a red-team set, the preview also starts a red-team run of the draft on its newest
set (or the one chosen; ``skip_red_team`` starts none) with the same config, linked as ``red_team_run``: the gates
read it like any red-team run of the draft. All their chunks are queued in alternation, so the page shows gold
figures, flips and attack rates while everything is going.
"""

from django.db import transaction

from policyhub.models import PolicyVersion

from ..models import DraftPreview, LabelingRun, RedTeamSet, TeacherConfig
from ..selectors.previews import draft_preview_for_key
from ..selectors.runs import run_for_key
from . import gold
from .gold import GoldError, check_teacher_config, gold_pair_ids, require_owner
from .redteam import red_team_run_create
from .runs import enqueue_chunks_alternating, labeling_run_create


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


def _red_team_set(policy, chosen: RedTeamSet | None, skip: bool) -> RedTeamSet | None:
    """The set the preview red-teams the draft on: none when skipped, the chosen one, else the policy's newest."""
    if skip:
        return None
    if chosen is None:
        return policy.red_team_sets.order_by("-created_at", "-id").first()
    if chosen.policy_id != policy.pk:
        raise GoldError(f"Red-team set #{chosen.pk} belongs to another policy, not {policy.slug}.")
    return chosen


def draft_preview_start(
    *,
    user,
    draft: PolicyVersion,
    config: TeacherConfig,
    idempotency_key: str = "",
    red_team_set: RedTeamSet | None = None,
    skip_red_team: bool = False,
) -> DraftPreview:
    """Freeze the draft as it is now and label the gold set under it, and under the published version (unless a
    finished score of it with this config covers the gold set already); when the policy has a red-team set, also
    red-team the draft with the same config on ``red_team_set`` (default: the newest; ``skip_red_team``: none).
    The same ``idempotency_key`` (the API's header) from the same user returns the preview the first call
    started."""
    require_owner(user)
    key = idempotency_key[:200]
    if key and (existing := draft_preview_for_key(user=user, key=key)):
        return existing
    if key and (other := run_for_key(user=user, key=key)):
        raise GoldError(gold.key_used_for(other))
    with transaction.atomic():
        draft = PolicyVersion.objects.select_for_update().select_related("policy").get(pk=draft.pk)
        if key and (existing := draft_preview_for_key(user=user, key=key)):  # a concurrent retry won the lock
            return existing
        if not draft.is_draft:
            raise GoldError(f"v{draft.number} is {draft.status}, not a draft: nothing to preview.")
        policy = draft.policy
        pair_ids = gold_pair_ids(policy)
        check_teacher_config(config, draft)
        published = policy.versions.filter(status=PolicyVersion.Status.PUBLISHED).order_by("-number").first()
        selection = {"pair_ids": pair_ids}
        draft_run = labeling_run_create(
            version=draft, config=config, selection=selection, user=user, enqueue_chunks=False,
            purpose=LabelingRun.Purpose.DRAFT_PREVIEW, chunk_size=gold.GOLD_CHUNK_PAIRS, idempotency_key=key,
        )  # fmt: skip
        published_run = None
        if published is not None:
            published_run = _reusable_score(published, config, pair_ids) or labeling_run_create(
                version=published, config=config, selection=selection, user=user, enqueue_chunks=False,
                purpose=LabelingRun.Purpose.GOLD_SCORE, chunk_size=gold.GOLD_CHUNK_PAIRS,
            )  # fmt: skip
        red_team_run, red_team_parts = None, []
        if (chosen := _red_team_set(policy, red_team_set, skip_red_team)) is not None:
            red_team_run, red_team_parts = red_team_run_create(
                user=user, red_team_set=chosen, version=draft, config=config
            )
        preview = DraftPreview.objects.create(
            policy=policy, draft=draft, draft_revision=draft.revision, content_hash=draft.content_hash,
            teacher_config=config, draft_run=draft_run, published_version=published, published_run=published_run,
            red_team_run=red_team_run, gold_pairs=len(pair_ids), created_by=user,
        )  # fmt: skip
        enqueue_chunks_alternating([draft_run, published_run, *red_team_parts])
    return preview
