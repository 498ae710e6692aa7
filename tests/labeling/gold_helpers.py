"""Helpers for gold-set tests: approve items through the real review services, write gold labels, and a fake
teacher whose answer depends on the pair and on whether the request carries the draft's prompt."""

import re

from labeling.models import GoldLabel, Pair
from labeling.services import review_adjudicate, review_claim_next, review_submit

MEMBER_ID = re.compile(r'"member_id": "([^"]+)"')
JOB_ID = re.compile(r'"job_id": "([^"]+)"')
DRAFT_MARK = "Remote-first teams count as compatible."


def approve_all(run, annotator, labels: dict[str, str]) -> None:
    """An annotator reviews every item of ``run`` waiting for review, labelling it by its member's external id."""
    while (item := review_claim_next(user=annotator, run_id=run.pk)) is not None:
        review_submit(user=annotator, candidate_id=item.pk, label=labels[item.pair.member.external_id])


def adjudicate(candidate, owner, first, second, labels=("strong_match", "no_match"), final="no_match"):
    """Two annotators disagree on ``candidate`` (their run needs 2 reviewers); the owner decides ``final``."""
    for annotator, label in zip((first, second), labels, strict=True):
        item = review_claim_next(user=annotator, run_id=candidate.run_id)
        while item.pk != candidate.pk:  # leave other items to later claims
            item = review_claim_next(user=annotator, run_id=candidate.run_id)
        review_submit(user=annotator, candidate_id=item.pk, label=label)
    return review_adjudicate(user=owner, candidate_id=candidate.pk, label=final, reason="The must-have is missing.")


def make_gold(policy, labels: dict[tuple[str, str], str], user=None) -> None:
    """Gold labels by (member external id, job external id)."""
    for (member, job), label in labels.items():
        pair = Pair.objects.get(member__external_id=member, job__external_id=job)
        GoldLabel.objects.create(policy=policy, pair=pair, label=label, created_by=user)


def pair_of(request: dict) -> tuple[str, str]:
    user = request["messages"][-1]["content"]
    return MEMBER_ID.search(user).group(1), JOB_ID.search(user).group(1)


def teacher(published: dict, draft: dict):
    """A fake-teacher responder: ``{(member, job): (label, rules)}`` for the published prompt and for a prompt
    holding ``DRAFT_MARK`` (the draft's edit)."""

    def respond(request, call_number):
        is_draft = DRAFT_MARK in request["messages"][0]["content"]
        pair = pair_of(request)
        label, rules = (draft if is_draft else published)[pair]
        who = "draft" if is_draft else "published"
        return {"label": label, "rationale": f"{who} says {label} for {pair[0]}×{pair[1]}.", "cited_rules": rules}

    return respond
