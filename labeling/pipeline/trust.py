"""Trust checks on teacher answers.

Each valid answer is checked for: its label being in the version's label set; its cited rules existing in the
version; a non-empty rationale; **grounded facts** (a hallucination check, :mod:`.claims`: every claim the
rationale makes about the member or the job, numbers, degrees, credentials, organisations and other names,
skills, locations and seniority, must be supported by this member's or this job's text; the policy's own words,
label keys and rule IDs are not claims); **tone** (a lexicon of disrespectful words and of references to
protected attributes); whether it **follows instructions planted in the data** (:mod:`.injection`); and, for a
teacher that reads the policy, that it **cites a rule** when the policy has rules (``no_rule_cited``). These are
cheap lexical checks: they catch the common failures, not every possible one. A run with a judge adds
``judge_verdict`` (:mod:`.judge`): a second teacher config's verdict on the answer, grounded and consistent with
the rules it cites; runs without one do not have that check at all.
"""

import re
from dataclasses import dataclass

from ..teacher.base import LabelSpace, TeacherAnswer
from . import claims, injection

CHECKS = (
    "label_in_set", "cited_rules_exist", "rationale_present", "facts_grounded", "tone", "follows_data_instructions",
    "no_rule_cited", "judge_verdict",
)  # fmt: skip
#: Per-run settings of the checks (``LabelingRun.checks``) and their defaults.
DEFAULT_SETTINGS = {
    "scan_for_injection": True,  # route pairs whose text is aimed at a model to review (suspected_injection)
    "require_rule_citation": True,  # an LLM's answer that cites no rule of a policy with rules fails no_rule_cited
}

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


def settings_with_defaults(values: dict | None) -> dict:
    """A run's check settings with the defaults filled in; unknown names and non-booleans are refused."""
    merged = {**DEFAULT_SETTINGS, **(values or {})}
    for name, value in merged.items():
        if name not in DEFAULT_SETTINGS:
            raise ValueError(f"Unknown check setting {name!r}; expected {', '.join(DEFAULT_SETTINGS)}.")
        if not isinstance(value, bool):
            raise ValueError(f"Check setting {name} must be true or false, not {value!r}.")
    return merged


def check_answer(
    answer: TeacherAnswer, *, space: LabelSpace, member: dict, job: dict, system_prompt: str,
    injections: list[injection.Match] = (), require_citation: bool = False, judged: bool = False,
) -> dict:  # fmt: skip
    """{check name: Check} for one valid answer. ``system_prompt`` is the run's (its policy text is no claim);
    ``injections``: what the pair's text holds for a model, so an answer that obeyed it fails;
    ``require_citation``: an answer must cite a rule (the policy has rules and the teacher reads them);
    ``judged``: the run has a judge, whose verdict is ``answer.judge``."""
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
    obeyed = injection.follows_data_instructions(answer.rationale, answer.label, list(injections))
    results["follows_data_instructions"] = Check(not obeyed, obeyed)
    uncited = require_citation and bool(space.rule_ids) and not answer.cited_rules
    results["no_rule_cited"] = Check(
        not uncited, "the policy asks for the rules applied: none cited" if uncited else ""
    )
    if judged:
        results["judge_verdict"] = judge_check(answer.judge)
    return results


def judge_check(verdict: dict | None) -> Check:
    """The judge's verdict as a check: fails when it finds unsupported claims or an inconsistency with the cited
    rules, and when there is no usable verdict (an unjudged answer is not trusted)."""
    if not verdict:
        return Check(False, "not judged: the judge gave no verdict on this answer")
    if verdict.get("error"):
        attempts = verdict.get("attempts") or 1
        return Check(False, f"the judge's reply could not be used after {attempts} attempt{'s' * (attempts != 1)} "
                            f"({verdict['error']}): an unjudged answer is not trusted")  # fmt: skip
    problems = []
    if not verdict["grounded"]:
        claims = verdict.get("unsupported_claims") or ["(the judge named none)"]
        problems.append(f"unsupported claims: {'; '.join(claims)}")
    if not verdict["consistent"]:
        problems.append(f"inconsistent with the cited rules: {verdict.get('inconsistency') or '(no reason given)'}")
    return Check(not problems, "; ".join(problems))


def combine(per_answer: list[dict]) -> dict:
    """A check fails for the candidate when it fails for any of its answers; details are joined."""
    combined = {}
    for name in CHECKS:
        if name not in per_answer[0]:  # judge_verdict: only runs with a judge
            continue
        failures = sorted({r[name].detail for r in per_answer if not r[name].ok})
        combined[name] = Check(not failures, "; ".join(f for f in failures if f)).as_dict()
    return combined
