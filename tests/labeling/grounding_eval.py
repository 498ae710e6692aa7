"""The claim grounding check measured on the labelled set ``data/grounding_cases.jsonl`` (its kinds and how it
was written: ``data/make_grounding_cases.py``). Used by ``test_grounding_eval.py`` and ``bench/grounding.py``.

The policy the cases are checked under is the demo policy (``policyhub.demo``), its system prompt built as a run
would freeze it, so its words, label keys and rule IDs are excluded as they are in a real run."""

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from labeling.pipeline import claims

DATA = Path(__file__).with_name("data") / "grounding_cases.jsonl"
KINDS = ("degree", "credential", "organisation", "number", "skill", "location", "seniority")


def load_cases() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def demo_policy() -> claims.PolicyWords:
    """What the demo policy's v1 supports: its frozen system prompt, label keys and rule IDs."""
    from policyhub import demo
    from policyhub.prompts import build_system_prompt

    policy = SimpleNamespace(name="Member–job match", slug=demo.DEMO_SLUG, task_description="Is the job a good match?")
    version = SimpleNamespace(policy=policy, number=1, content_hash="0" * 64, body=demo.BODY_V1, labels=demo.LABELS,
                              rules=demo.RULES)  # fmt: skip
    labels = tuple(label["key"] for label in demo.LABELS)
    return claims.policy_words(build_system_prompt(version), labels, tuple(rule["id"] for rule in demo.RULES))


@dataclass(frozen=True)
class Outcome:
    case: dict
    found: list[claims.Claim]  # the ungrounded claims the check reports

    @property
    def flagged(self) -> bool:
        return bool(self.found)

    def is_invented(self, claim: claims.Claim) -> bool:
        invented = (self.case["invented"] or "").lower()
        text = claim.text.lower()
        return bool(invented) and (text in invented or invented in text)

    @property
    def named(self) -> bool:
        """The check names the claim the case invents (not only some other claim)."""
        return any(self.is_invented(claim) for claim in self.found)


def check(cases: list[dict], policy: claims.PolicyWords) -> list[Outcome]:
    return [
        Outcome(case, claims.ungrounded(case["rationale"], member=case["member"], job=case["job"], policy=policy))
        for case in cases
    ]


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def figures(outcomes: list[Outcome]) -> dict:
    """Case-level precision, recall and false-positive rate; per kind recall, how often the invented claim is
    named, and claim precision (the share of reported claims that are the invented one)."""
    grounded = [o for o in outcomes if o.case["grounded"]]
    invented = [o for o in outcomes if not o.case["grounded"]]
    flagged_grounded = sum(o.flagged for o in grounded)
    caught = sum(o.flagged for o in invented)
    result = {
        "cases": len(outcomes), "grounded": len(grounded), "hallucinated": len(invented),
        "precision": _ratio(caught, caught + flagged_grounded), "recall": _ratio(caught, len(invented)),
        "false_positive_rate": _ratio(flagged_grounded, len(grounded)),
        "named": _ratio(sum(o.named for o in invented), len(invented)), "kinds": {},
    }  # fmt: skip
    for kind in KINDS:
        mine = [o for o in invented if o.case["kind"] == kind]
        reported = [c for o in mine for c in o.found]
        result["kinds"][kind] = {
            "cases": len(mine), "recall": _ratio(sum(o.flagged for o in mine), len(mine)),
            "named": _ratio(sum(o.named for o in mine), len(mine)),
            "claim_precision": _ratio(sum(o.is_invented(c) for o in mine for c in o.found), len(reported)),
        }  # fmt: skip
    result["domains"] = dict(Counter(o.case["domain"] for o in outcomes))
    return result
