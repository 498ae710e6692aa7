"""Reads of red-team sets: policy owners and ML engineers read them; each variant as a diff against its original."""

import difflib
from dataclasses import dataclass

from django.db.models import QuerySet

from policyhub import roles
from policyhub.models import Policy

from ..models import Pair, RedTeamSet, RedTeamVariant
from ..teacher.messages import pair_facts

READERS = (roles.POLICY_OWNER, roles.ML_ENGINEER)
READERS_ONLY = "Only policy owners and ML engineers can read red-team sets."


def red_team_sets(*, user, policy: Policy) -> QuerySet[RedTeamSet]:
    roles.require_role(user, *READERS, message=READERS_ONLY)
    return RedTeamSet.objects.filter(policy=policy).select_related("created_by")


def red_team_set_get(*, user, set_id: int) -> RedTeamSet:
    roles.require_role(user, *READERS, message=READERS_ONLY)
    return RedTeamSet.objects.select_related("policy").get(pk=set_id)


@dataclass(frozen=True)
class FieldChange:
    field: str  # e.g. "member.summary"
    clean: object
    variant: object
    diff: str  # a unified diff of the two texts (lists one item a line)


@dataclass(frozen=True)
class VariantDiff:
    variant: RedTeamVariant
    clean_member: dict
    clean_job: dict
    changes: list[FieldChange]


def _lines(value) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split("\n")
    return [str(item) for item in items]


def variant_changes(*, clean_member: dict, clean_job: dict, member: dict, job: dict) -> list[FieldChange]:
    changes = []
    for side, clean, edited in (("member", clean_member, member), ("job", clean_job, job)):
        for key in clean.keys() | edited.keys():
            before, after = clean.get(key), edited.get(key)
            if before != after:
                diff = "\n".join(
                    difflib.unified_diff(_lines(before), _lines(after), "clean", "variant", lineterm="", n=1)
                )
                changes.append(FieldChange(f"{side}.{key}", before, after, diff))
    return sorted(changes, key=lambda change: change.field)


def red_team_variant_diffs(*, user, red_team_set: RedTeamSet) -> list[VariantDiff]:
    """Every variant of the set with its clean original's facts and what changed, in the set's order."""
    roles.require_role(user, *READERS, message=READERS_ONLY)
    variants = list(red_team_set.variants.order_by("index"))
    clean = pair_facts(Pair.objects.filter(id__in={v.pair_id for v in variants}), pair="")
    return [
        VariantDiff(v, *clean[v.pair_id], variant_changes(clean_member=clean[v.pair_id][0],
                    clean_job=clean[v.pair_id][1], member=v.member, job=v.job))
        for v in variants
    ]  # fmt: skip
