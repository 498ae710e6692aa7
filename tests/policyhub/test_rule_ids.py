"""Rule IDs are stable across versions and never reused; content errors point at the row and field."""

import pytest

from policyhub import services
from policyhub.models import ContentError, ContentValidationError, PolicyVersion


def _draft(policy) -> PolicyVersion:
    return policy.versions.get(status=PolicyVersion.Status.DRAFT)


def _save(draft, owner, *, labels=None, rules=None, body=None) -> PolicyVersion:
    return services.policy_version_draft_save(
        version=draft,
        user=owner,
        revision=draft.revision,
        body=draft.body if body is None else body,
        labels=draft.labels if labels is None else labels,
        rules=draft.rules if rules is None else rules,
    )


def _publish_without_r3(policy, owner) -> PolicyVersion:
    """Publish v2 with R3 removed, then open draft v3."""
    draft = _draft(policy)
    saved = _save(draft, owner, rules=[rule for rule in draft.rules if rule["id"] != "R3"])
    services.policy_version_publish(version=saved, user=owner)
    return services.policy_version_draft_start(policy=policy, user=owner)


def _where(error: ContentValidationError) -> list[tuple]:
    return [(e.section, e.index, e.field) for e in error.content_errors]


# --- new rules get new IDs ----------------------------------------------------------------------------------
def test_new_rule_with_empty_id_gets_the_next_number(policy, owner):
    draft = _draft(policy)

    saved = _save(draft, owner, rules=[*draft.rules, {"id": "", "text": "Salary expectations are met."}])

    assert saved.rule_ids == ["R1", "R2", "R3", "R4"]
    assert saved.rules[3]["text"] == "Salary expectations are met."


def test_several_new_rules_get_consecutive_numbers_in_order(policy, owner):
    draft = _draft(policy)
    new = [{"id": "", "text": "First new rule."}, {"text": "Second new rule."}]

    saved = _save(draft, owner, rules=[new[0], *draft.rules, new[1]])

    assert saved.rule_ids == ["R4", "R1", "R2", "R3", "R5"]
    assert PolicyVersion.objects.get(pk=draft.pk).rule_ids == ["R4", "R1", "R2", "R3", "R5"]


def test_new_rule_id_is_above_an_id_removed_in_an_earlier_version(policy, owner):
    v3 = _publish_without_r3(policy, owner)
    assert v3.rule_ids == ["R1", "R2"]

    saved = _save(v3, owner, rules=[*v3.rules, {"id": "", "text": "A brand-new rule."}])

    assert saved.rule_ids == ["R1", "R2", "R4"]


def test_new_rule_id_is_above_an_id_of_a_retired_version(policy, owner):
    v3 = _publish_without_r3(policy, owner)
    services.policy_version_retire(version=policy.versions.get(number=1), user=owner)

    saved = _save(v3, owner, rules=[*v3.rules, {"id": "", "text": "A brand-new rule."}])

    assert saved.rule_ids == ["R1", "R2", "R4"]


def test_new_rule_id_is_above_an_id_typed_into_the_draft(policy, owner):
    draft = _draft(policy)
    rules = [*draft.rules, {"id": "R10", "text": "Typed ID."}, {"id": "", "text": "No ID."}]

    saved = _save(draft, owner, rules=rules)

    assert saved.rule_ids == ["R1", "R2", "R3", "R10", "R11"]


def test_policy_create_numbers_rules_without_ids(owner):
    policy = services.policy_create(
        slug="fresh",
        name="Fresh",
        task_description="Fit?",
        owner=owner,
        labels=[{"key": "yes", "definition": "Yes."}, {"key": "no", "definition": "No."}],
        rules=[{"text": "One."}, {"id": "", "text": "Two."}],
    )

    assert policy.versions.get().rule_ids == ["R1", "R2"]


# --- IDs are never reused -----------------------------------------------------------------------------------
def test_an_id_removed_in_an_earlier_version_cannot_be_reused(policy, owner):
    v3 = _publish_without_r3(policy, owner)
    rules = [*v3.rules, {"id": "R3", "text": "A different rule under the old ID."}]

    with pytest.raises(ContentValidationError) as caught:
        _save(v3, owner, rules=rules)

    assert _where(caught.value) == [("rules", 2, "id")]
    assert "never reused" in caught.value.content_errors[0].message
    stored = PolicyVersion.objects.get(pk=v3.pk)
    assert stored.rule_ids == ["R1", "R2"]
    assert stored.revision == v3.revision


def test_a_reused_id_is_refused_even_when_typed_in_lower_case(policy, owner):
    v3 = _publish_without_r3(policy, owner)

    with pytest.raises(ContentValidationError) as caught:
        _save(v3, owner, rules=[{"id": "r3", "text": "Old ID, new rule."}, *v3.rules])

    assert _where(caught.value) == [("rules", 0, "id")]


def test_an_id_retired_with_its_version_cannot_be_reused(policy, owner):
    v3 = _publish_without_r3(policy, owner)
    services.policy_version_retire(version=policy.versions.get(number=1), user=owner)

    with pytest.raises(ContentValidationError) as caught:
        _save(v3, owner, rules=[*v3.rules, {"id": "R3", "text": "Old ID, new rule."}])

    assert _where(caught.value) == [("rules", 2, "id")]


def test_an_id_removed_in_the_open_draft_can_be_put_back(policy, owner):
    draft = _draft(policy)
    without = _save(draft, owner, rules=draft.rules[:2])

    restored = _save(without, owner, rules=[*without.rules, draft.rules[2]])

    assert restored.rule_ids == ["R1", "R2", "R3"]


# --- IDs are stable -----------------------------------------------------------------------------------------
def test_rule_ids_are_kept_across_versions(policy, owner):
    draft = _draft(policy)
    rules = [dict(rule) for rule in reversed(draft.rules)]
    rules[0]["text"] = "Location is compatible, or the job is remote or hybrid."
    saved = _save(draft, owner, rules=rules)
    services.policy_version_publish(version=saved, user=owner)

    v3 = services.policy_version_draft_start(policy=policy, user=owner)

    assert saved.rule_ids == ["R3", "R2", "R1"]
    assert v3.rule_ids == ["R3", "R2", "R1"]
    assert v3.rules[0]["text"] == "Location is compatible, or the job is remote or hybrid."
    v1 = policy.versions.get(number=1)
    assert {r["id"]: r["text"] for r in v1.rules}["R3"] == "Location is compatible or the job is remote."


# --- content errors by row and field ------------------------------------------------------------------------
def test_duplicate_rule_ids_are_refused_at_the_second_row(policy, owner):
    draft = _draft(policy)
    rules = [*draft.rules, {"id": "R2", "text": "A second R2."}]

    with pytest.raises(ContentValidationError) as caught:
        _save(draft, owner, rules=rules)

    assert _where(caught.value) == [("rules", 3, "id")]
    assert "used twice" in caught.value.content_errors[0].message


def test_duplicate_label_keys_are_refused_at_the_second_row(policy, owner):
    draft = _draft(policy)
    labels = [*draft.labels, {"key": "no_match", "title": "Again", "definition": "Duplicate."}]

    with pytest.raises(ContentValidationError) as caught:
        _save(draft, owner, labels=labels)

    assert _where(caught.value) == [("labels", 3, "key")]
    assert "used twice" in caught.value.content_errors[0].message


def test_empty_label_definition_is_refused(policy, owner):
    draft = _draft(policy)
    labels = [dict(label) for label in draft.labels]
    labels[1]["definition"] = "   "

    with pytest.raises(ContentValidationError) as caught:
        _save(draft, owner, labels=labels)

    assert _where(caught.value) == [("labels", 1, "definition")]


def test_empty_rule_text_is_refused(policy, owner):
    draft = _draft(policy)
    rules = [dict(rule) for rule in draft.rules]
    rules[2]["text"] = ""

    with pytest.raises(ContentValidationError) as caught:
        _save(draft, owner, rules=rules)

    assert _where(caught.value) == [("rules", 2, "text")]


@pytest.mark.parametrize("bad_key", ["Strong", "2nd", "has space", "dash-key"])
def test_malformed_label_key_is_refused(policy, owner, bad_key):
    draft = _draft(policy)
    labels = [*draft.labels, {"key": bad_key, "definition": "Something."}]

    with pytest.raises(ContentValidationError) as caught:
        _save(draft, owner, labels=labels)

    assert _where(caught.value) == [("labels", 3, "key")]


@pytest.mark.parametrize("bad_id", ["X1", "R0", "R01", "rule 4"])
def test_malformed_rule_id_is_refused(policy, owner, bad_id):
    draft = _draft(policy)

    with pytest.raises(ContentValidationError) as caught:
        _save(draft, owner, rules=[*draft.rules, {"id": bad_id, "text": "Something."}])

    assert _where(caught.value) == [("rules", 3, "id")]


def test_every_problem_is_reported_with_its_place(policy, owner):
    draft = _draft(policy)
    labels = [
        {"key": "a", "definition": ""},
        {"key": "a", "definition": "Fine."},
    ]
    rules = [{"id": "R1", "text": "One."}, {"id": "R1", "text": ""}]

    with pytest.raises(ContentValidationError) as caught:
        _save(draft, owner, labels=labels, rules=rules)

    assert set(_where(caught.value)) == {
        ("labels", 0, "definition"),
        ("labels", 1, "key"),
        ("rules", 1, "id"),
        ("rules", 1, "text"),
    }
    assert set(caught.value.message_dict) == {"labels", "rules"}


def test_content_error_message_names_the_row_for_people():
    error = ContentError("rules", 2, "id", "The ID 'X' must look like R1, R2, …")

    assert str(error) == "Rule 3: The ID 'X' must look like R1, R2, …"
