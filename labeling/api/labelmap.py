"""Label-set changes over the JSON API (policy owners: a draft is theirs only): the draft's label mapping with the
gold items of the labels it splits, and relabelling one of them under the draft's labels.

The mapping itself is part of the draft's content (``PUT /policies/{slug}/draft`` with ``label_mapping``); the
same service as the page's **Relabel** buttons (``labeling/services/labelmap.py``) sets a relabel. A pair that is
not such an item, or a label not among the split's new labels, is a 400 and changes nothing.
"""

from ninja import Field, Router, Schema
from ninja.errors import HttpError

from policyhub import selectors as policy_selectors
from policyhub.api_root import ErrorOut, TextIn, require_role
from policyhub.labelmap import mapping_rows
from policyhub.roles import POLICY_OWNER

from .. import selectors, services
from .common import policy_or_404

router = Router(tags=["label mapping"])
ERRORS = {400: dict, 403: ErrorOut, 404: ErrorOut}


class MappingRowOut(Schema):
    old: str
    new: list[str]
    kind: str = Field(description="rename, merge, split or kept.")


class RelabelItemOut(Schema):
    pair_id: int
    member_id: str
    job_id: str
    gold_label: str = Field(description="The gold label as stored (the previous version's key).")
    choices: list[str] = Field(description="The split's new labels.")
    label: str | None = Field(description="The new label chosen under the draft; null: still needs a relabel.")
    relabelled_by: str | None


class RelabelListOut(Schema):
    policy: str
    draft: int
    based_on: int | None
    mapping: list[MappingRowOut]
    needs_relabel: int = Field(description="Gold items of split labels still without a new label.")
    items: list[RelabelItemOut]


class RelabelIn(TextIn):
    label: str = Field(description="One of the item's ``choices``.")


def _draft(request, slug: str):
    require_role(request, POLICY_OWNER)
    policy = policy_or_404(request, slug)
    draft = policy_selectors.policy_draft(policy=policy)
    if draft is None:
        raise HttpError(404, f"{slug} has no draft: nothing to relabel.")
    return policy, draft


def _item_out(item) -> dict:
    relabel = item.relabel
    return {
        "pair_id": item.gold.pair_id,
        "member_id": item.gold.pair.member.external_id,
        "job_id": item.gold.pair.job.external_id,
        "gold_label": item.gold.label,
        "choices": item.choices,
        "label": relabel.label if relabel else None,
        "relabelled_by": relabel.created_by.get_username() if relabel and relabel.created_by else None,
    }


@router.get("/policies/{slug}/draft/relabel", response={200: RelabelListOut, **ERRORS})
def list_relabel(request, slug: str):
    """The draft's label mapping and every gold item of a label it splits, relabelled or not."""
    policy, draft = _draft(request, slug)
    gold = selectors.draft_gold(draft=draft, with_pairs=True)
    old_keys = draft.based_on.label_keys if draft.based_on_id else []
    rows = mapping_rows(draft.label_mapping, old_keys=old_keys)
    return {
        "policy": policy.slug,
        "draft": draft.number,
        "based_on": draft.based_on.number if draft.based_on_id else None,
        "mapping": [{"old": r.old, "new": list(r.new), "kind": r.kind} for r in rows],
        "needs_relabel": len(gold.pending),
        "items": [_item_out(item) for item in gold.items],
    }


@router.put("/policies/{slug}/draft/relabel/{pair_id}", response={200: RelabelItemOut, **ERRORS})
def set_relabel(request, slug: str, pair_id: int, payload: RelabelIn):
    """Give a gold item of a split label its label under the draft (again: replace the choice)."""
    _policy, draft = _draft(request, slug)
    services.gold_relabel_set(user=request.auth, draft=draft, pair_id=pair_id, label=payload.label)
    gold = selectors.draft_gold(draft=draft, with_pairs=True)
    return _item_out(next(item for item in gold.items if item.gold.pair_id == pair_id))
