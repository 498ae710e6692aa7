"""Reads of red-team sets: policy owners and ML engineers read them; each variant as a diff against its original;
what a red-team run of a set would cost (its plan). The runs' report is ``selectors.redteam_report``."""

import difflib
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.db.models import QuerySet

from policyhub import roles
from policyhub.models import Policy, PolicyVersion

from ..models import Pair, RedTeamExpectation, RedTeamSet, RedTeamVariant, TeacherConfig
from ..pipeline.context import variant_facts
from ..teacher.messages import pair_facts
from .planning import RunPlan, run_plan

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
    none = ({}, {})  # an uploaded variant with an expected label has no original: all of it is new
    originals = [none if v.expected_label == RedTeamExpectation.LABEL_EQUALS else clean[v.pair_id] for v in variants]
    return [
        VariantDiff(v, member, job, variant_changes(clean_member=member, clean_job=job, member=v.member, job=v.job))
        for v, (member, job) in zip(variants, originals, strict=True)
    ]


def clean_pair_ids(red_team_set: RedTeamSet) -> list[int]:
    """The pairs a red-team run labels as clean originals: those its variants are compared with (an uploaded
    variant with an expected label has none; its pair only keys it)."""
    variants = red_team_set.variants.exclude(expected_label=RedTeamExpectation.LABEL_EQUALS)
    return sorted(set(variants.values_list("pair_id", flat=True)))


@dataclass(frozen=True)
class RedTeamPlan:
    """What a red-team run would send and cost: a run plan per part (the clean originals, then each category's
    variants, as the teacher would see them), and their totals."""

    parts: list[tuple[str, RunPlan]]  # ("clean" or the category, its plan)
    judge: str = ""  # the judge config's name; its requests and cost are in each part's plan

    @property
    def judge_requests(self) -> int:
        return sum(plan.judge.requests for _, plan in self.parts if plan.judge)

    @property
    def judge_estimated_cost(self) -> Decimal:
        return sum((plan.judge.estimated_cost for _, plan in self.parts if plan.judge), start=Decimal(0))

    @property
    def requests(self) -> int:
        return sum(plan.requests for _, plan in self.parts)

    @property
    def estimated_cost(self) -> Decimal:
        return sum((plan.estimated_cost for _, plan in self.parts), start=Decimal(0))

    @property
    def estimated_input_tokens(self) -> int:
        return sum(plan.estimated_input_tokens for _, plan in self.parts)

    @property
    def estimated_output_tokens(self) -> int:
        return sum(plan.estimated_output_tokens for _, plan in self.parts)

    def as_dict(self) -> dict:
        return {
            "requests": self.requests, "estimated_cost": str(self.estimated_cost), "judge": self.judge or None,
            "judge_requests": self.judge_requests, "judge_estimated_cost": str(self.judge_estimated_cost),
            "estimated_input_tokens": self.estimated_input_tokens,
            "estimated_output_tokens": self.estimated_output_tokens,
            "parts": [
                {"part": name, "pairs": plan.pairs, "requests": plan.requests, "cached_share": plan.cached_share,
                 "estimated_input_tokens": plan.estimated_input_tokens,
                 "estimated_output_tokens": plan.estimated_output_tokens, "estimated_cost": str(plan.estimated_cost),
                 "judge_requests": plan.judge.requests if plan.judge else 0,
                 "token_basis": plan.token_basis, "example_messages": plan.example_messages}
                for name, plan in self.parts
            ],
        }  # fmt: skip


def red_team_plan(
    *, user, red_team_set: RedTeamSet, version: PolicyVersion, config: TeacherConfig, judge: TeacherConfig | None = None
) -> RedTeamPlan:
    """The plan of each part with the pipeline's own request and cache-key code (``selectors.planning``): the
    clean part from the pairs, a category's part from its variants (``pipeline.context.variant_facts``); with
    ``judge``, each part's judge requests and cost too."""
    roles.require_role(user, *READERS, message=READERS_ONLY)
    pair_ids = clean_pair_ids(red_team_set)
    plan = partial(run_plan, version=version, config=config, judge=judge)
    parts = [("clean", plan(selection={"pair_ids": pair_ids}))] if pair_ids else []
    for category in red_team_set.categories:
        ids = sorted(set(red_team_set.variants.filter(category=category).values_list("pair_id", flat=True)))
        facts_of = partial(variant_facts, red_team_set.pk, category)
        parts.append((category, plan(selection={"pair_ids": ids}, facts_of=facts_of)))
    return RedTeamPlan(parts=parts, judge=judge.name if judge else "")
