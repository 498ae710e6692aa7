"""Writes for label-set changes: a policy owner's new label for a gold item whose label a draft splits, and
applying a published version's label mapping to the gold set.

Publishing rewrites each gold label through the mapping (rename, merge: its new key; split: its relabel), one
``GoldLabelEvent`` (replaced, the reason naming the version) per changed label, in the publishing transaction.
Earlier events, versions, runs and exports are not touched. A split item published without a relabel (the gate
overridden with a reason) leaves the gold set, with a removed event carrying that reason.
"""

from django.db import transaction

from policyhub.models import PolicyVersion

from ..models import GoldLabel, GoldLabelEvent, GoldRelabel
from ..selectors.labelmap import draft_gold
from .gold import GoldError, _lock_policy, require_owner


def gold_relabel_set(*, user, draft: PolicyVersion, pair_id: int, label: str) -> GoldRelabel:
    """Give a gold item of a split label its label under ``draft`` (one of the split's new labels). Setting it
    again replaces the earlier choice; the gold label itself changes only when the draft is published."""
    require_owner(user)
    label = (label or "").strip()
    with transaction.atomic():
        _lock_policy(draft.policy_id)
        draft = PolicyVersion.objects.select_related("policy", "based_on").get(pk=draft.pk)
        if not draft.is_draft:
            raise GoldError(f"v{draft.number} is {draft.status}: relabel gold under the policy's draft.")
        item = next((i for i in draft_gold(draft=draft).items if i.gold.pair_id == pair_id), None)
        if item is None:
            raise GoldError(
                f"Pair #{pair_id} is not a gold item of a label draft v{draft.number} splits: nothing to relabel."
            )
        if label not in item.choices:
            raise GoldError(
                {"label": f"{item.gold.label} splits into {', '.join(item.choices)}; {label!r} is not one of them."}
            )
        relabel, _ = GoldRelabel.objects.update_or_create(
            version=draft, pair_id=pair_id,
            defaults={"policy_id": draft.policy_id, "old_label": item.gold.label, "label": label, "created_by": user},
        )  # fmt: skip
    return relabel


def gold_apply_label_mapping(*, version: PolicyVersion, user, override_reason: str | None = None) -> int:
    """Rewrite the gold set through ``version``'s mapping (called by publishing, inside its transaction, before
    the version's status is read as published). Returns how many gold labels changed or left."""
    if not version.label_mapping or version.based_on_id is None:
        return 0
    _lock_policy(version.policy_id)
    # read as the draft it was a moment ago: the mapping applies to the gold set as it stood under it
    as_draft = PolicyVersion(
        pk=version.pk, policy_id=version.policy_id, number=version.number, status=PolicyVersion.Status.DRAFT,
        labels=version.labels, label_mapping=version.label_mapping, based_on_id=version.based_on_id,
    )  # fmt: skip
    gold = draft_gold(draft=as_draft)
    reason = f"Label mapping of v{version.number}"
    by_pair = {g.pair_id: g for g in GoldLabel.objects.filter(policy_id=version.policy_id)}
    changed, events = [], []
    for pair_id, label in gold.truth.items():
        current = by_pair[pair_id]
        if current.label != label:
            events.append(GoldLabelEvent(
                policy_id=version.policy_id, pair_id=pair_id, action=GoldLabelEvent.Action.REPLACED,
                label=current.label, new_label=label, user=user, reason=f"{reason}: {current.label} → {label}.",
            ))  # fmt: skip
            current.label = label
            changed.append(current)
    GoldLabel.objects.bulk_update(changed, ["label"])
    pending = gold.pending
    for item in pending:
        events.append(GoldLabelEvent(
            policy_id=version.policy_id, pair_id=item.gold.pair_id, action=GoldLabelEvent.Action.REMOVED,
            label=item.gold.label, source_candidate_id=item.gold.source_candidate_id, user=user,
            reason=f"{reason} splits {item.gold.label} into {', '.join(item.choices)}; published without a new "
            f"label for this item (override: {(override_reason or '').strip()}).",
        ))  # fmt: skip
    GoldLabel.objects.filter(pk__in=[item.gold.pk for item in pending]).delete()
    GoldLabelEvent.objects.bulk_create(events)
    return len(changed) + len(pending)
