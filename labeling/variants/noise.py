"""``irrelevant_noise`` variants: edits that carry no information about the match (skills in another order, a
hobby added, the headline's casing or the summary's spacing changed). The label must not change.
"""

import random

from . import Variant, append_text, copy_facts

HOBBIES = [
    "In my free time I enjoy hiking and photography.",
    "Hobbies: chess, baking bread and long-distance cycling.",
    "I play the guitar in a local band.",
    "Weekend gardener and amateur astronomer.",
]


def _reorder_skills(member: dict, rng: random.Random) -> str:
    skills = member.get("skills") or []
    if len(set(skills)) < 2:
        return ""
    shuffled = list(skills)
    while shuffled == skills:
        rng.shuffle(shuffled)
    member["skills"] = shuffled
    return "member.skills"


def _add_hobby(member: dict, rng: random.Random) -> str:
    member["summary"] = append_text(member.get("summary") or "", rng.choice(HOBBIES))
    return "member.summary"


def _headline_case(member: dict, rng: random.Random) -> str:
    headline = member.get("headline") or ""
    for changed in (headline.upper(), headline.lower(), headline.title()):
        if changed != headline:
            member["headline"] = changed
            return "member.headline"
    return ""


def _summary_spacing(member: dict, rng: random.Random) -> str:
    summary = member.get("summary") or ""
    if " " not in summary.strip():
        return ""
    member["summary"] = "  ".join(summary.split(" ")) + "\n"
    return "member.summary"


EDITS = {"reorder_skills": _reorder_skills, "add_hobby": _add_hobby, "headline_case": _headline_case,
         "summary_spacing": _summary_spacing}  # fmt: skip


def generate(member: dict, job: dict, *, rng: random.Random, labels: list[str]) -> Variant:
    """One edit, drawn at random among those that change this member; adding a hobby always does."""
    names = list(EDITS)
    rng.shuffle(names)
    names.remove("add_hobby")
    for name in [*names, "add_hobby"]:
        variant_member, variant_job = copy_facts(member, job)
        if where := EDITS[name](variant_member, rng):
            return Variant(member=variant_member, job=variant_job, field=where, style=name)
    raise AssertionError("add_hobby always changes the member")
