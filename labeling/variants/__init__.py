"""Red-team variants of a pair: pure functions from a pair's facts to edited copies, one module per category.

Every generator takes the clean ``(member, job)`` facts (the dicts the teacher sees, ``teacher.messages``) and a
``random.Random`` seeded by the caller, and returns :class:`Variant` rows; nothing here touches the database, so
the same seed and the same facts give the same variants, byte for byte. The services (``services.redteam``)
sample the pairs, seed one generator per pair and category, and store the result.
"""

import hashlib
import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    member: dict  # the variant's facts (a copy of the clean ones with one edit)
    job: dict
    field: str  # the edited field, e.g. "job.description"
    style: str  # how it was edited, e.g. "ignore_instructions:de:zero_width"
    attribute: str = ""  # protected_attribute: which attribute the cue names
    planted_label: str = ""  # injection: the label the planted text asks for
    rationale_must_not_mention: list[str] = field(default_factory=list)
    member_lacks: list[str] = field(default_factory=list)  # hallucination_bait: what the rationale must not claim


def seeded_random(seed: int, *parts: str) -> random.Random:
    """A generator of its own for one (seed, pair, category): a variant does not depend on which others were made."""
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - reproducible by design


def copy_facts(member: dict, job: dict) -> tuple[dict, dict]:
    """Deep enough copies: the facts hold texts and lists of texts."""
    return (
        {k: list(v) if isinstance(v, list) else v for k, v in member.items()},
        {k: list(v) if isinstance(v, list) else v for k, v in job.items()},
    )


def append_text(text: str, addition: str) -> str:
    text = (text or "").rstrip()
    return f"{text} {addition}" if text else addition
