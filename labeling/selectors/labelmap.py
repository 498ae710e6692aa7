"""Reads for label-set changes: the gold set seen through a draft's label mapping, and the gold items of a split
label that wait for a policy owner's new label.

The gold set holds labels of the latest published version (publishing a mapping rewrites it, see
``labeling.services.labelmap``). Under a draft with a mapping, a gold label that is renamed or merged is read as its
new key; one that is split is read as its relabel when a policy owner set one, and otherwise is not scored at all
(neither right nor wrong) but listed as needing a relabel.
"""

from dataclasses import dataclass, field

from policyhub.labelmap import effective_mapping, mapping_rows, split_keys
from policyhub.models import Policy, PolicyVersion

from ..models import GoldLabel, GoldRelabel


def gold_keys_in_use(*, policy: Policy) -> set[str]:
    """The labels the policy's gold set uses."""
    return set(GoldLabel.objects.filter(policy=policy).values_list("label", flat=True).distinct())


@dataclass
class RelabelItem:
    gold: GoldLabel
    choices: list[str]  # the split's new labels
    relabel: GoldRelabel | None

    @property
    def done(self) -> bool:
        return self.relabel is not None


@dataclass
class DraftGold:
    """The gold set under a draft: ``truth`` {pair id: label in the draft's labels} of every scorable gold pair,
    ``items`` the gold items of split labels (relabelled or not)."""

    truth: dict[int, str]
    original: dict[int, str]  # {pair id: gold label as stored}: what the published version is scored against
    items: list[RelabelItem] = field(default_factory=list)
    mapped: bool = False  # the draft has a mapping that applies to the gold set

    @property
    def pending(self) -> list[RelabelItem]:
        return [item for item in self.items if not item.done]


def applies_mapping(version: PolicyVersion) -> bool:
    """A draft with a mapping from a base version (a published version's gold is already rewritten)."""
    return version.is_draft and bool(version.label_mapping) and version.based_on_id is not None


def draft_gold(*, draft: PolicyVersion, with_pairs: bool = False) -> DraftGold:
    """The gold set as ``draft`` reads it (see the module). ``with_pairs`` loads each split item's pair."""
    golds = GoldLabel.objects.filter(policy_id=draft.policy_id)
    if with_pairs:
        golds = golds.select_related("pair__member", "pair__job", "created_by")
    golds = list(golds.order_by("pair__member__external_id", "pair__job__external_id", "pk"))
    original = {gold.pair_id: gold.label for gold in golds}
    if not applies_mapping(draft):
        return DraftGold(truth=dict(original), original=original)
    mapping = effective_mapping(draft.label_mapping, old_keys=draft.based_on.label_keys, new_keys=draft.label_keys)
    splits = split_keys(draft.label_mapping)
    relabels = {r.pair_id: r for r in GoldRelabel.objects.filter(version=draft).select_related("created_by")}
    result = DraftGold(truth={}, original=original, mapped=True)
    for gold in golds:
        new = mapping.get(gold.label)
        if gold.label in splits:
            relabel = relabels.get(gold.pair_id)
            if relabel is not None and (relabel.old_label != gold.label or relabel.label not in splits[gold.label]):
                relabel = None  # made for another gold label or another split: decide again
            result.items.append(RelabelItem(gold, splits[gold.label], relabel))
            if relabel is not None:
                result.truth[gold.pair_id] = relabel.label
        elif new and len(new) == 1:
            result.truth[gold.pair_id] = new[0]
        else:  # not a label of the base version (or removed without a mapping: publishing refuses that)
            result.truth[gold.pair_id] = gold.label
    return result


def label_mapping_figures(*, draft: PolicyVersion) -> dict | None:
    """What the relabel gate reads (None: the draft splits no label): the splits, how many gold items they
    cover, how many are relabelled and which pairs still wait."""
    if not applies_mapping(draft) or not split_keys(draft.label_mapping):
        return None
    gold = draft_gold(draft=draft)
    return {
        "mapping": [
            {"old": row.old, "new": list(row.new), "kind": row.kind}
            for row in mapping_rows(draft.label_mapping, old_keys=draft.based_on.label_keys)
        ],
        "split_gold": len(gold.items),
        "relabelled": len(gold.items) - len(gold.pending),
        "needs_relabel": len(gold.pending),
        "pending_pairs": [item.gold.pair_id for item in gold.pending],
    }
