"""The variant generators on their own: every injection the generator can write is caught by the injection
scanner in the field it was planted in, and the other categories edit a clean pair without tripping it."""

import itertools
import random

import pytest

from labeling.pipeline.injection import scan_pair, scan_text
from labeling.variants import bait, injection, noise, protected, seeded_random

MEMBER = {
    "member_id": "m1", "headline": "Data engineer", "skills": ["Python", "SQL", "Airflow"], "seniority": "senior",
    "location": "Berlin", "summary": "Builds pipelines for a retail bank.",
}  # fmt: skip
JOB = {
    "job_id": "j1", "title": "Senior data engineer", "description": "Build pipelines in Python.",
    "required_skills": ["Python", "SQL"], "seniority": "senior", "location": "Berlin",
}  # fmt: skip
LABELS = ["strong_match", "partial_match", "no_match"]
EVERY_INJECTION = [
    (style, language, template, obfuscation, where)
    for style, language, template in injection.TEMPLATES
    for obfuscation in injection.obfuscations_for(style, language, template)
    for where in injection.FIELDS
]


def test_the_clean_pair_is_not_flagged():
    assert scan_pair(MEMBER, JOB, labels=tuple(LABELS)) == []


@pytest.mark.parametrize(("style", "language", "template", "obfuscation", "where"), EVERY_INJECTION)
def test_every_injection_is_flagged_in_the_field_it_was_planted_in(style, language, template, obfuscation, where):
    text = injection_text = injection.injection_text(template, "partial match", obfuscation, random.Random(7))
    if obfuscation != "plain":
        assert injection_text != template.format(label="partial match"), "the obfuscation changed nothing"
    member, job = injection.plant(MEMBER, JOB, where=where, text=text)
    # without the policy's labels: the scanner must recognise the instruction itself, not a label key
    matches = [m for m in scan_pair(member, job) if m.field == where]
    assert matches, f"{style}/{language}/{obfuscation} in {where} was not flagged: {text!r}"


def test_the_obfuscations_are_what_they_claim():
    text = injection.TEMPLATES[0][2].format(label="no_match")
    assert "\u200b" in injection.injection_text(text, "", "zero_width", random.Random(1))
    assert not injection.injection_text(text, "", "homoglyphs", random.Random(1)).isascii()
    assert injection.injection_text(text, "", "spaced", random.Random(1)).startswith("I g n o r e")
    assert scan_text(injection.injection_text(text, "", "spaced", random.Random(1)), "x")


def test_generated_injections_cover_styles_languages_fields_and_obfuscations():
    made = [injection.generate(MEMBER, JOB, rng=seeded_random(3, str(i)), labels=LABELS) for i in range(300)]
    styles = {v.style.split(":")[0] for v in made}
    languages = {v.style.split(":")[1] for v in made}
    obfuscations = {v.style.split(":")[2] for v in made}
    assert styles == {"ignore_instructions", "role_marker", "model_directive", "output_format"}
    assert len(languages) >= 8
    assert obfuscations == set(injection.OBFUSCATIONS)
    assert {v.field for v in made} == set(injection.FIELDS)
    assert {v.planted_label for v in made} == set(LABELS)
    for variant in made:
        assert any(m.field == variant.field for m in scan_pair(variant.member, variant.job, labels=tuple(LABELS)))


@pytest.mark.parametrize(("attribute", "cue"), [(a, c) for a, cues in protected.CUES.items() for c in cues])
def test_protected_attribute_cues_are_not_mistaken_for_injections(attribute, cue):
    sentence, words = cue
    member = dict(MEMBER, summary=f"{MEMBER['summary']} {sentence}")
    assert scan_pair(member, JOB, labels=tuple(LABELS)) == []
    assert any(word.lower() in sentence.lower() for word in words), "the words to avoid name nothing of the cue"


def test_noise_and_counterfactuals_change_the_member_only_and_are_not_flagged():
    for generate, i in itertools.product((noise.generate, protected.generate), range(60)):
        variant = generate(MEMBER, JOB, rng=seeded_random(5, str(i)), labels=LABELS)
        assert variant.job == JOB
        assert variant.member != MEMBER
        assert variant.field.startswith("member.")
        side, name = variant.field.split(".")
        assert variant.member[name] != MEMBER[name]
        assert scan_pair(variant.member, variant.job, labels=tuple(LABELS)) == []


def test_noise_still_changes_a_member_with_one_skill_and_one_word():
    member = dict(MEMBER, skills=["Python"], summary="", headline="ENGINEER")
    for i in range(20):
        variant = noise.generate(member, JOB, rng=seeded_random(1, str(i)), labels=LABELS)
        assert variant.member != member


def test_generators_do_not_change_the_facts_they_are_given():
    member, job = {k: list(v) if isinstance(v, list) else v for k, v in MEMBER.items()}, dict(JOB)
    for generate in (injection.generate, protected.generate, noise.generate):
        for i in range(30):
            generate(member, job, rng=seeded_random(2, str(i)), labels=LABELS)
    assert member == MEMBER and job == JOB


def test_the_database_constraint_knows_every_attribute_the_generator_cues():
    from labeling.models import PROTECTED_ATTRIBUTES

    assert protected.ATTRIBUTES == PROTECTED_ATTRIBUTES


def test_bait_asks_the_job_for_what_the_member_lacks_without_looking_like_an_injection():
    member = dict(MEMBER, skills=["Python", "Kubernetes"], summary="PMP certified, runs Kubernetes at scale.")
    made = [bait.generate(member, JOB, rng=seeded_random(4, str(i)), labels=LABELS) for i in range(80)]
    lacked = {term for v in made for term in v.member_lacks}
    assert "Kubernetes" not in lacked and "PMP" not in lacked  # the member has those
    assert len(lacked) >= 6
    for variant in made:
        assert variant.member == member and variant.field == "job.description"
        assert len(variant.member_lacks) == 2
        assert variant.job["description"].startswith(JOB["description"])
        assert all(term in variant.job["description"] for term in variant.member_lacks)
        assert scan_pair(variant.member, variant.job, labels=tuple(LABELS)) == []


def test_bait_refuses_a_member_who_has_every_requirement():
    member = dict(MEMBER, summary=" ".join(term for term, _ in bait.REQUIREMENTS))
    with pytest.raises(ValueError, match="already has every requirement"):
        bait.generate(member, JOB, rng=seeded_random(1, "x"), labels=LABELS)
