"""Shared pieces of the label-mapping tests: draft v2 of the ``match`` policy renames ``strong_match`` to
``great_match`` and splits ``partial_match`` into ``maybe_match`` and ``stretch_match``; the gold set is
``test_gold_scoring.GOLD`` (one gold item, m2×j2, is ``partial_match``: the split one)."""

import pytest

from labeling.models import Pair
from policyhub import services as policy_services

from .gold_helpers import DRAFT_MARK, make_gold
from .test_gold_scoring import GOLD

NEW_LABELS = [
    {"key": "great_match", "title": "Great match", "definition": "Meets the must-haves."},
    {"key": "maybe_match", "title": "Maybe", "definition": "Gaps that training closes."},
    {"key": "stretch_match", "title": "Stretch", "definition": "Gaps that need a senior hire's patience."},
    {"key": "no_match", "title": "No match", "definition": "A must-have is missing."},
]
MAPPING = {"strong_match": ["great_match"], "partial_match": ["maybe_match", "stretch_match"]}
# The draft's answers in its own labels: all right once m2×j2 is relabelled maybe_match.
MAPPED_DRAFT = {
    ("m1", "j1"): ("great_match", ["R1"]),
    ("m1", "j2"): ("no_match", ["R1"]),
    ("m2", "j1"): ("no_match", ["R2"]),
    ("m2", "j2"): ("maybe_match", ["R3"]),
}
SPLIT_PAIR = ("m2", "j2")


def save(draft, owner, *, labels=None, mapping=None, body=None):
    return policy_services.policy_version_draft_save(
        version=draft, user=owner, revision=draft.revision, body=draft.body if body is None else body,
        labels=draft.labels if labels is None else labels, rules=draft.rules, label_mapping=mapping,
    )  # fmt: skip


def pair(member: str, job: str) -> Pair:
    return Pair.objects.get(member__external_id=member, job__external_id=job)


@pytest.fixture
def mapped_draft(pairs, policy, owner):
    """Draft v2 with the new labels and the mapping saved, the draft's edit in its body, the gold set made."""
    make_gold(policy, GOLD, user=owner)
    draft = policy.versions.get(number=2)
    return save(draft, owner, labels=NEW_LABELS, mapping=MAPPING, body=f"# Match policy\n\n{DRAFT_MARK}\n")
