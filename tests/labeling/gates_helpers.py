"""Shared pieces of the quality-gate tests: the draft v2 of the ``match`` policy previewed on its 4 gold pairs with
the fake OpenAI teacher, answering well (3 of 4 right) or badly (1 of 4), and the gates set through the service.

The published v1's answers are right on 2 of 4 (``test_gold_scoring.PUBLISHED``): R1 0.5, R2 1.0, R3 0.0. The good
draft (``test_draft_preview.DRAFT``) scores 0.75 with R1 1.0 and R3 0.5; the bad draft says ``strong_match`` citing
R1 everywhere: 0.25, R1 0.25 (a drop of 0.25 against v1)."""

import pytest

from labeling.models import RunChunk
from labeling.services import draft_preview_start, labeling_run_chunk_process, quality_gates_update
from policyhub import services as policy_services

from .gold_helpers import DRAFT_MARK, make_gold, teacher
from .test_draft_preview import DRAFT
from .test_gold_scoring import GOLD, PUBLISHED

BAD_DRAFT = {pair: ("strong_match", ["R1"]) for pair in GOLD}
ALL_OFF = {
    "min_gold_accuracy": None,
    "max_rule_accuracy_drop": None,
    "max_asr_injection": None,
    "max_asr_protected_attribute": None,
    "max_asr_irrelevant_noise": None,
    "max_asr_hallucination_bait": None,
    "max_flip_rate": None,
    "max_hallucination_rate": None,
}


def set_gates(policy, owner, **values):
    """Only the given gates on (the others off)."""
    return quality_gates_update(policy=policy, user=owner, **{**ALL_OFF, **values})


def edit_draft(policy, owner, body: str):
    draft = policy.versions.get(number=2)
    return policy_services.policy_version_draft_save(
        version=draft, user=owner, revision=draft.revision, body=body, labels=draft.labels, rules=draft.rules
    )


def finish(preview):
    """Process the preview's chunks here, as the workers would."""
    for run_id in (preview.draft_run_id, preview.published_run_id):
        for chunk in RunChunk.objects.filter(run_id=run_id, status="pending").order_by("index"):
            labeling_run_chunk_process(run_id=run_id, chunk_index=chunk.index)
    return preview


@pytest.fixture
def gated_draft(pairs, policy, owner):
    """Draft v2 with the draft's edit saved (revision 2), the gold set made."""
    make_gold(policy, GOLD, user=owner)
    return edit_draft(policy, owner, f"# Match policy\n\n{DRAFT_MARK}\n")


@pytest.fixture
def previewed(gated_draft, owner, openai_config, fake_openai):
    """``previewed(bad=False)``: a finished preview of the draft with a teacher that does well or badly."""

    config = openai_config()

    def make(bad: bool = False, draft=None, model: str = ""):
        """``model``: another model (so the response cache does not answer what the first one said)."""
        fake_openai.responder = teacher(published=PUBLISHED, draft=BAD_DRAFT if bad else DRAFT)
        chosen = openai_config(f"fake {model}", model=model) if model else config
        return finish(draft_preview_start(user=owner, draft=draft or gated_draft, config=chosen))

    return make
