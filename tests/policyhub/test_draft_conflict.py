"""Saving a draft is guarded by its revision: a stale save is refused and never overwrites anything."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from policyhub import roles, services
from policyhub.models import ContentValidationError, PolicyVersion


def _draft(policy) -> PolicyVersion:
    return policy.versions.get(status=PolicyVersion.Status.DRAFT)


def _state(version: PolicyVersion) -> tuple:
    stored = PolicyVersion.objects.get(pk=version.pk)
    return stored.revision, stored.body, stored.labels, stored.rules, stored.content_hash, stored.author_id


def test_fresh_revision_saves_and_bumps_the_revision(policy, owner):
    draft = _draft(policy)
    assert draft.revision == 1

    saved = services.policy_version_draft_save(
        version=draft, user=owner, revision=1, body="New text.", labels=draft.labels, rules=draft.rules
    )

    assert saved.revision == 2
    stored = PolicyVersion.objects.get(pk=draft.pk)
    assert stored.revision == 2
    assert stored.body == "New text."
    assert stored.updated_at > draft.updated_at


def test_each_save_bumps_the_revision_again(policy, owner):
    draft = _draft(policy)
    first = services.policy_version_draft_save(
        version=draft, user=owner, revision=1, body="one", labels=draft.labels, rules=draft.rules
    )

    second = services.policy_version_draft_save(
        version=first, user=owner, revision=first.revision, body="two", labels=draft.labels, rules=draft.rules
    )

    assert (first.revision, second.revision) == (2, 3)
    assert PolicyVersion.objects.get(pk=draft.pk).body == "two"


def test_save_records_who_saved_last(policy, owner, make_user):
    colleague = make_user("carla", roles.POLICY_OWNER)
    draft = _draft(policy)

    saved = services.policy_version_draft_save(
        version=draft, user=colleague, revision=1, body="Carla's text.", labels=draft.labels, rules=draft.rules
    )

    assert saved.author == colleague


def test_stale_revision_raises_conflict_with_the_current_version(policy, owner, make_user):
    colleague = make_user("carla", roles.POLICY_OWNER)
    opened_by_owner = _draft(policy)
    opened_by_colleague = _draft(policy)
    services.policy_version_draft_save(
        version=opened_by_colleague,
        user=colleague,
        revision=opened_by_colleague.revision,
        body="Carla saved first.",
        labels=opened_by_colleague.labels,
        rules=opened_by_colleague.rules,
    )
    before = _state(opened_by_owner)

    with pytest.raises(services.DraftConflict) as caught:
        services.policy_version_draft_save(
            version=opened_by_owner,
            user=owner,
            revision=opened_by_owner.revision,
            body="Olivia's edit, started from revision 1.",
            labels=opened_by_owner.labels,
            rules=[*opened_by_owner.rules, {"id": "", "text": "Olivia's new rule."}],
        )

    current = caught.value.current
    assert current.pk == opened_by_owner.pk
    assert current.revision == 2
    assert current.body == "Carla saved first."
    assert current.author == colleague
    assert "carla" in str(caught.value)
    assert _state(opened_by_owner) == before


def test_stale_revision_never_overwrites_the_other_save(policy, owner):
    draft = _draft(policy)
    services.policy_version_draft_save(
        version=draft, user=owner, revision=1, body="first save", labels=draft.labels, rules=draft.rules
    )

    with pytest.raises(services.DraftConflict):
        services.policy_version_draft_save(
            version=draft, user=owner, revision=1, body="second save, stale", labels=draft.labels, rules=[]
        )

    stored = PolicyVersion.objects.get(pk=draft.pk)
    assert stored.body == "first save"
    assert stored.rule_ids == ["R1", "R2", "R3"]
    assert stored.revision == 2


def test_a_revision_from_the_future_is_also_a_conflict(policy, owner):
    draft = _draft(policy)
    before = _state(draft)

    with pytest.raises(services.DraftConflict):
        services.policy_version_draft_save(
            version=draft, user=owner, revision=99, body="x", labels=draft.labels, rules=draft.rules
        )

    assert _state(draft) == before


def test_invalid_content_changes_nothing(policy, owner):
    draft = _draft(policy)
    before = _state(draft)

    with pytest.raises(ContentValidationError):
        services.policy_version_draft_save(
            version=draft,
            user=owner,
            revision=draft.revision,
            body="This body must not be saved.",
            labels=[*draft.labels, {"key": "strong_match", "definition": "Duplicate key."}],
            rules=draft.rules,
        )

    assert _state(draft) == before


def test_after_an_invalid_save_the_same_revision_still_saves(policy, owner):
    draft = _draft(policy)
    with pytest.raises(ContentValidationError):
        services.policy_version_draft_save(
            version=draft, user=owner, revision=1, body="x", labels=draft.labels, rules=[{"id": "R1", "text": ""}]
        )

    saved = services.policy_version_draft_save(
        version=draft, user=owner, revision=1, body="fixed", labels=draft.labels, rules=draft.rules
    )

    assert saved.revision == 2
    assert saved.body == "fixed"


def test_a_published_version_cannot_be_saved_as_a_draft(policy, owner):
    v1 = policy.versions.get(number=1)
    before = _state(v1)

    with pytest.raises(ValidationError, match="only a draft can be edited"):
        services.policy_version_draft_save(
            version=v1, user=owner, revision=v1.revision, body="rewrite", labels=v1.labels, rules=v1.rules
        )

    assert _state(v1) == before


def test_a_draft_published_meanwhile_cannot_be_saved(policy, owner):
    opened = _draft(policy)
    services.policy_version_publish(version=_draft(policy), user=owner)
    published = _state(opened)

    with pytest.raises(ValidationError, match="published meanwhile"):
        services.policy_version_draft_save(
            version=opened, user=owner, revision=opened.revision, body="late", labels=opened.labels, rules=opened.rules
        )

    assert _state(opened) == published


def test_only_policy_owners_can_save_a_draft(policy, annotator):
    draft = _draft(policy)
    before = _state(draft)

    with pytest.raises(PermissionDenied):
        services.policy_version_draft_save(
            version=draft, user=annotator, revision=1, body="x", labels=draft.labels, rules=draft.rules
        )

    assert _state(draft) == before
