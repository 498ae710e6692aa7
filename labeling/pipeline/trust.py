"""Trust checks on teacher answers.

Each valid answer is checked for: its label being in the version's label set; its cited rules existing in the
version; a non-empty rationale; **grounded facts** (a hallucination check: every skill, location or seniority
level the rationale mentions must appear in this member or this job; the vocabulary of skills and locations is
the one of the pairs being checked together, so a fact is caught when it belongs to some other profile); and
**tone** (a lexicon of disrespectful words and of references to protected attributes); whether it **follows
instructions planted in the data** (``labeling.pipeline.injection``); and, for a teacher that reads the policy,
that it **cites a rule** when the policy has rules (``no_rule_cited``). These are cheap lexical checks: they catch
the common failures, not every possible one.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..models import Seniority
from ..teacher.base import LabelSpace, TeacherAnswer
from . import injection

CHECKS = (
    "label_in_set", "cited_rules_exist", "rationale_present", "facts_grounded", "tone", "follows_data_instructions",
    "no_rule_cited",
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
    answer: TeacherAnswer, *, space: LabelSpace, member: dict, job: dict, vocab: set[str],
    injections: list[injection.Match] = (), require_citation: bool = False,
) -> dict:  # fmt: skip
    """{check name: Check} for one valid answer. ``injections``: what the pair's text holds for a model, so an
    answer that obeyed it fails; ``require_citation``: an answer must cite a rule (the policy has rules and the
    teacher reads them)."""
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
    obeyed = injection.follows_data_instructions(answer.rationale, answer.label, list(injections))
    results["follows_data_instructions"] = Check(not obeyed, obeyed)
    uncited = require_citation and bool(space.rule_ids) and not answer.cited_rules
    results["no_rule_cited"] = Check(
        not uncited, "the policy asks for the rules applied: none cited" if uncited else ""
    )
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
