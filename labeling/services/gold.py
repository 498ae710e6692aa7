"""The gold set: human-approved items a policy owner marks as trusted labels, their removal, and scoring a
published version × teacher config on it.

Only an item humans approved (reviewed to agreement, or adjudicated) can become gold, with its approved label. A
pair is gold at most once per policy: marking it again with the same label changes nothing; with a different label
it is refused unless the owner explicitly replaces it. Every addition, replacement and removal is logged in
``GoldLabelEvent``. Writes for one policy are serialised by locking the policy row.

A score is a labeling run with ``purpose=gold_score`` over the gold pairs: chunks on the workers and the response
cache as for any run, but nothing of it is queued for review, approved, compared with other teachers or exported.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from policyhub import roles
from policyhub.labelmap import translate
from policyhub.models import Policy, PolicyVersion
from policyhub.selectors import forward_translation

from ..models import Candidate, GoldLabel, GoldLabelEvent, LabelingRun, TeacherConfig
from ..pipeline.context import label_space
from ..selectors.runs import run_for_key
from ..teacher import TeacherConfigError, get_provider
from .runs import labeling_run_create

#: Pairs per chunk of a gold run: every chunk commits its answers, so small chunks mean early figures.
GOLD_CHUNK_PAIRS = 10
OWNERS_ONLY = "Only policy owners can change the gold set, score on it or preview drafts."


class GoldError(ValidationError):
    """A gold-set action that cannot be done as asked; the message says why. Nothing was changed."""


class GoldConflict(GoldError):
    """The pair is already gold with a different label: replacing it must be an explicit action."""

    def __init__(self, gold: GoldLabel, candidate: Candidate):
        self.gold, self.candidate = gold, candidate
        super().__init__(
            f"Pair {candidate.pair.member.external_id} × {candidate.pair.job.external_id} is already gold as "
            f"{gold.label}; item #{candidate.pk} was approved as {candidate.approved_label}. Replace the gold label "
            "explicitly if the new one is right."
        )


def require_owner(user) -> None:
    roles.require_role(user, roles.POLICY_OWNER, message=OWNERS_ONLY)


def _lock_policy(policy_id: int) -> None:
    Policy.objects.select_for_update().filter(pk=policy_id).first()


def _approved_candidate(candidate_id: int) -> Candidate:
    candidate = Candidate.objects.select_related("run__policy_version", "pair__member", "pair__job").get(
        pk=candidate_id
    )
    if candidate.run.purpose != LabelingRun.Purpose.LABELING or not candidate.is_human_approved:
        state = candidate.get_review_state_display() if candidate.review_state else "not reviewed by a human"
        raise GoldError(
            f"Item #{candidate.pk} is not human-approved yet ({state}): only items reviewers agreed on or a policy "
            "owner adjudicated can become gold."
        )
    return candidate


def _gold_key(candidate: Candidate) -> str:
    """The item's approved label in the gold set's keys (a label renamed or merged by a later version reads as its
    new key); refused when a later version split it, since only a person can say which new label is right."""
    version = candidate.run.policy_version
    translation = forward_translation(version=version)
    label = translate(candidate.approved_label, translation)
    if label is None:
        raise GoldError(
            f"Item #{candidate.pk} was approved as {candidate.approved_label} under v{version.number}; a later version "
            f"splits that label into {', '.join(translation[candidate.approved_label])}, so it cannot become gold "
            "as it is: review it under the current version."
        )
    return label


@dataclass
class GoldMarkResult:
    gold: GoldLabel
    outcome: str  # "added" | "unchanged" | "replaced"


def gold_mark(*, user, candidate_id: int, replace: bool = False) -> GoldMarkResult:
    """Make a human-approved item's label the gold label of its pair under its policy."""
    require_owner(user)
    policy_id = (
        Candidate.objects.filter(pk=candidate_id).values_list("run__policy_version__policy_id", flat=True).first()
    )
    if policy_id is None:
        raise GoldError(f"There is no item #{candidate_id}.")
    now = timezone.now()
    with transaction.atomic():
        # The approval is read under the policy lock a review undo also takes: an undo cannot land between the
        # check and the write, so gold is never made from an item that was just reopened.
        _lock_policy(policy_id)
        candidate = _approved_candidate(candidate_id)
        label = _gold_key(candidate)
        gold = GoldLabel.objects.filter(policy_id=policy_id, pair_id=candidate.pair_id).first()
        if gold is None:
            gold = GoldLabel.objects.create(
                policy_id=policy_id, pair_id=candidate.pair_id, label=label, source_candidate=candidate,
                created_by=user,
            )  # fmt: skip
            GoldLabelEvent.objects.create(
                policy_id=policy_id, pair_id=candidate.pair_id, action=GoldLabelEvent.Action.ADDED,
                label=gold.label, source_candidate=candidate, user=user,
            )  # fmt: skip
            return GoldMarkResult(gold, "added")
        if gold.label == label:
            return GoldMarkResult(gold, "unchanged")
        if not replace:
            raise GoldConflict(gold, candidate)
        GoldLabelEvent.objects.create(
            policy_id=policy_id, pair_id=candidate.pair_id, action=GoldLabelEvent.Action.REPLACED, label=gold.label,
            new_label=label, source_candidate=candidate, user=user,
        )  # fmt: skip
        gold.label, gold.source_candidate, gold.created_by, gold.created_at = (label, candidate, user, now)
        gold.save()
    return GoldMarkResult(gold, "replaced")


@dataclass
class BulkGoldResult:
    added: int = 0
    unchanged: int = 0
    conflicts: list[tuple[Candidate, GoldLabel]] = field(default_factory=list)
    waiting: int = 0  # items of the run still waiting for review or adjudication
    split: int = 0  # items whose approved label a later version split (skipped: a person must relabel them)

    @property
    def summary(self) -> str:
        parts = [f"{self.added} added to the gold set", f"{self.unchanged} already gold with the same label"]
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} refused: already gold with a different label")
        if self.waiting:
            parts.append(f"{self.waiting} still waiting for a human decision (skipped)")
        if self.split:
            parts.append(f"{self.split} approved as a label a later version splits (skipped)")
        return "; ".join(parts) + "."


def gold_mark_run(*, user, run: LabelingRun) -> BulkGoldResult:
    """Mark every human-approved item of a run as gold. Idempotent: items already gold with the same label are
    left alone; pairs gold with a different label are reported, never changed."""
    require_owner(user)
    if run.purpose != LabelingRun.Purpose.LABELING:
        raise GoldError(f"Run #{run.pk} is a {run.get_purpose_display().lower()} run: it has no human-approved items.")
    policy_id = run.policy_version.policy_id
    result = BulkGoldResult()
    with transaction.atomic():
        _lock_policy(policy_id)
        approved = list(run.candidates.human_approved().select_related("pair__member", "pair__job").order_by("id"))
        result.waiting = run.candidates.waiting_for_humans().count()
        existing = {
            gold.pair_id: gold
            for gold in GoldLabel.objects.filter(policy_id=policy_id, pair_id__in=[c.pair_id for c in approved])
        }
        new_gold, events = [], []
        translation = forward_translation(version=run.policy_version)
        for candidate in approved:
            gold = existing.get(candidate.pair_id)
            label = translate(candidate.approved_label, translation)
            if label is None:
                result.split += 1
            elif gold is None:
                new_gold.append(
                    GoldLabel(
                        policy_id=policy_id, pair_id=candidate.pair_id, label=label,
                        source_candidate=candidate, created_by=user,
                    )
                )  # fmt: skip
                events.append(
                    GoldLabelEvent(
                        policy_id=policy_id, pair_id=candidate.pair_id, action=GoldLabelEvent.Action.ADDED,
                        label=label, source_candidate=candidate, user=user,
                    )
                )  # fmt: skip
            elif gold.label == label:
                result.unchanged += 1
            else:
                result.conflicts.append((candidate, gold))
        GoldLabel.objects.bulk_create(new_gold)
        GoldLabelEvent.objects.bulk_create(events)
        result.added = len(new_gold)
    return result


def gold_remove(*, user, gold_id: int, reason: str) -> GoldLabelEvent:
    """Take a pair out of the gold set; who, when, which label and why are kept in the log."""
    require_owner(user)
    if not reason.strip():
        raise GoldError({"reason": "Say why the gold label is removed: the reason is recorded."})
    with transaction.atomic():
        gold = GoldLabel.objects.select_for_update().filter(pk=gold_id).first()
        if gold is None:
            raise GoldError("That gold label no longer exists (someone removed it already).")
        event = GoldLabelEvent.objects.create(
            policy_id=gold.policy_id, pair_id=gold.pair_id, action=GoldLabelEvent.Action.REMOVED, label=gold.label,
            source_candidate_id=gold.source_candidate_id, user=user, reason=reason.strip()[:5000],
        )  # fmt: skip
        gold.delete()
    return event


# --- scores on the gold set --------------------------------------------------------------------------------------
def gold_pair_ids(policy: Policy) -> list[int]:
    """The policy's gold pairs; an empty gold set is refused (there is nothing to score on)."""
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


def key_used_for(run: LabelingRun) -> str:
    return (
        f"This Idempotency-Key was used for run #{run.pk} ({run.get_purpose_display().lower()}): send a new key "
        "to start something else."
    )


def gold_score_start(*, user, version: PolicyVersion, config: TeacherConfig, idempotency_key: str = "") -> LabelingRun:
    """Label the policy's gold pairs under a published version with a config; the run is the score. The same
    ``idempotency_key`` (the API's header) from the same user returns the run the first call started."""
    require_owner(user)
    if idempotency_key and (existing := run_for_key(user=user, key=idempotency_key)):
        if existing.purpose != LabelingRun.Purpose.GOLD_SCORE:
            raise GoldError(key_used_for(existing))
        return existing
    if version.status != PolicyVersion.Status.PUBLISHED:
        raise GoldError(f"Score a published version; v{version.number} is {version.status}.")
    pair_ids = gold_pair_ids(version.policy)
    check_teacher_config(config, version)
    return labeling_run_create(
        version=version, config=config, selection={"pair_ids": pair_ids}, user=user,
        purpose=LabelingRun.Purpose.GOLD_SCORE, chunk_size=GOLD_CHUNK_PAIRS, idempotency_key=idempotency_key[:200],
    )  # fmt: skip
