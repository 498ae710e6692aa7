"""Trust checks on teacher answers.

Each valid answer is checked for: its label being in the version's label set; its cited rules existing in the
version; a non-empty rationale; **grounded facts** (a hallucination check: every skill, location or seniority
level the rationale mentions must appear in this member or this job; the vocabulary of skills and locations is
the one of the pairs being checked together, so a fact is caught when it belongs to some other profile); and
**tone** (a lexicon of disrespectful words and of references to protected attributes). These are cheap lexical
checks: they catch the common failures, not every possible one.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..models import Seniority
from ..teacher.base import LabelSpace, TeacherAnswer

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
_WORDS = re.compile(r"[A-Za-z0-9+#.]+(?:[-/][A-Za-z0-9+#.]+)*")
SENIORITY_WORDS = {value: value for value in Seniority.values}


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail}


def _ngrams(text: str, longest: int = 4) -> set[str]:
    words = [w.lower().strip(".") for w in _WORDS.findall(text)]
    return {" ".join(words[i : i + n]) for n in range(1, longest + 1) for i in range(len(words) - n + 1)}


def _terms(values: Iterable[str]) -> set[str]:
    return {str(v).strip().lower() for v in values if str(v).strip()}


def pair_terms(member: dict, job: dict) -> set[str]:
    """Skills, locations and seniority levels of one pair, lower-cased."""
    return _terms(
        [*member.get("skills", []), *job.get("required_skills", []), member.get("location", ""),
         job.get("location", ""), member.get("seniority", ""), job.get("seniority", "")]
    )  # fmt: skip


def vocabulary(pairs: Iterable[tuple[dict, dict]]) -> set[str]:
    """Every skill and location named by any of these pairs, plus the seniority levels."""
    vocab = set(SENIORITY_WORDS)
    for member, job in pairs:
        vocab |= pair_terms(member, job)
    return vocab


def check_answer(answer: TeacherAnswer, *, space: LabelSpace, member: dict, job: dict, vocab: set[str]) -> dict:
    """{check name: Check} for one valid answer."""
    unknown_rules = [rule for rule in answer.cited_rules if rule not in space.rule_ids]
    results = {
        "label_in_set": Check(answer.label in space.labels, "" if answer.label in space.labels else answer.label),
        "cited_rules_exist": Check(not unknown_rules, ", ".join(unknown_rules)),
        "rationale_present": Check(bool(answer.rationale.strip()), "" if answer.rationale.strip() else "empty"),
    }
    mentioned = _ngrams(answer.rationale) & vocab
    own_text = " ".join(
        str(v) for v in (member.get("headline"), member.get("summary"), job.get("title"), job.get("description"))
    ).lower()
    invented = sorted(
        term for term in mentioned - pair_terms(member, job) if term not in own_text and not _covered(term, mentioned)
    )
    results["facts_grounded"] = Check(
        not invented, f"not in this member or job: {', '.join(invented)}" if invented else ""
    )
    tone = sorted({m.group(0).lower() for m in _TONE.finditer(answer.rationale)})
    results["tone"] = Check(not tone, f"flagged words: {', '.join(tone)}" if tone else "")
    return results


def _covered(term: str, mentioned: set[str]) -> bool:
    """A one-word term that is part of a longer mentioned term is not a separate claim ("data" in "big data")."""
    return any(term != other and f" {term} " in f" {other} " for other in mentioned)


def combine(per_answer: list[dict]) -> dict:
    """A check fails for the candidate when it fails for any of its answers; details are joined."""
    combined = {}
    for name in CHECKS:
        failures = sorted({r[name].detail for r in per_answer if not r[name].ok})
        combined[name] = Check(not failures, "; ".join(f for f in failures if f)).as_dict()
    return combined
