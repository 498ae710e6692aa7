"""Trust checks on teacher answers.

Each valid answer is checked for: its label being in the version's label set; its cited rules existing in the
version; a non-empty rationale; **grounded facts** (a hallucination check, :mod:`.claims`: every claim the
rationale makes about the member or the job, numbers, degrees, credentials, organisations and other names,
skills, locations and seniority, must be supported by this member's or this job's text; the policy's own words,
label keys and rule IDs are not claims); and **tone** (a lexicon of disrespectful words and of references to
protected attributes). These are cheap lexical checks: they catch the common failures, not every possible one.
"""

import re
from dataclasses import dataclass

from ..teacher.base import LabelSpace, TeacherAnswer
from . import claims

CHECKS = ("label_in_set", "cited_rules_exist", "rationale_present", "facts_grounded", "tone")

DISRESPECTFUL = (
    "stupid", "idiot", "idiotic", "dumb", "lazy", "worthless", "incompetent", "pathetic", "loser", "useless",
    "clueless", "moron", "hopeless",
)  # fmt: skip
PROTECTED = (
    r"\d+\s*(?:years?|yrs?)\s*old", "too old", "too young", "elderly", "age", "aged", "gender", "female", "male",
    "woman", "women", "man", "men", "pregnan\\w*", "maternity", "race", "racial", "ethnic\\w*", "religio\\w*",
    "muslim", "christian", "jewish", "hindu", "buddhist", "nationality", "immigrant", "foreigner", "disab\\w*",
    "wheelchair", "married", "marital", "divorced", "children", "kids", "sexual orientation", "gay", "lesbian",
)  # fmt: skip
_TONE = re.compile(r"\b(?:" + "|".join(DISRESPECTFUL + PROTECTED) + r")\b", re.IGNORECASE)


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail}


def check_answer(answer: TeacherAnswer, *, space: LabelSpace, member: dict, job: dict, system_prompt: str) -> dict:
    """{check name: Check} for one valid answer; ``system_prompt`` is the run's (its policy text is no claim)."""
    unknown_rules = [rule for rule in answer.cited_rules if rule not in space.rule_ids]
    results = {
        "label_in_set": Check(answer.label in space.labels, "" if answer.label in space.labels else answer.label),
        "cited_rules_exist": Check(not unknown_rules, ", ".join(unknown_rules)),
        "rationale_present": Check(bool(answer.rationale.strip()), "" if answer.rationale.strip() else "empty"),
    }
    policy = claims.policy_words(system_prompt, space.labels, space.rule_ids)
    invented = claims.ungrounded(answer.rationale, member=member, job=job, policy=policy)
    results["facts_grounded"] = Check(
        not invented, f"not in this member or job: {', '.join(c.describe() for c in invented)}" if invented else ""
    )
    tone = sorted({m.group(0).lower() for m in _TONE.finditer(answer.rationale)})
    results["tone"] = Check(not tone, f"flagged words: {', '.join(tone)}" if tone else "")
    return results


def combine(per_answer: list[dict]) -> dict:
    """A check fails for the candidate when it fails for any of its answers; details are joined."""
    combined = {}
    for name in CHECKS:
        failures = sorted({r[name].detail for r in per_answer if not r[name].ok})
        combined[name] = Check(not failures, "; ".join(f for f in failures if f)).as_dict()
    return combined
