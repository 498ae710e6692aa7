"""Policy versions: draft → published → retired, and published versions never change."""

import copy
import hashlib
import json

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from policyhub import services
from policyhub.models import ImmutableVersionError, PolicyVersion

LABELS = [
    {"key": "yes", "title": "Yes", "definition": "It fits."},
    {"key": "no", "title": "No", "definition": "It does not fit."},
]
RULES = [{"id": "", "text": "Skills overlap."}]


def _reload(version: PolicyVersion) -> PolicyVersion:
    return PolicyVersion.objects.get(pk=version.pk)


def _v1(policy) -> PolicyVersion:
    return policy.versions.get(number=1)


def _draft(policy) -> PolicyVersion:
    return policy.versions.get(status=PolicyVersion.Status.DRAFT)


def _save_draft(draft, owner, **changes) -> PolicyVersion:
    content = {"body": draft.body, "labels": draft.labels, "rules": draft.rules, **changes}
    return services.policy_version_draft_save(version=draft, user=owner, revision=draft.revision, **content)


# --- creating and publishing --------------------------------------------------------------------------------
def test_policy_create_makes_a_draft_v1(owner):
    policy = services.policy_create(
        slug="fit", name="Fit", task_description="Does it fit?", owner=owner, body="Text", labels=LABELS, rules=RULES
    )

    versions = list(policy.versions.all())
    assert len(versions) == 1
    v1 = versions[0]
    assert v1.number == 1
    assert v1.status == PolicyVersion.Status.DRAFT
    assert v1.published_at is None and v1.published_by is None
    assert v1.author == owner
    assert v1.body == "Text"
    assert v1.label_keys == ["yes", "no"]
    assert v1.rule_ids == ["R1"]


def test_publish_keeps_the_number_and_sets_timestamps_and_publisher(owner):
    policy = services.policy_create(
        slug="fit", name="Fit", task_description="Does it fit?", owner=owner, labels=LABELS, rules=RULES
    )
    draft = _draft(policy)

    published = services.policy_version_publish(version=draft, user=owner)

    stored = _reload(published)
    assert stored.status == PolicyVersion.Status.PUBLISHED
    assert stored.number == 1
    assert stored.published_at is not None
    assert stored.published_by == owner
    assert stored.published_at >= stored.created_at


def test_next_draft_is_published_as_the_next_number(policy, owner):
    published = services.policy_version_publish(version=_draft(policy), user=owner)

    assert published.number == 2
    assert list(policy.versions.values_list("number", "status")) == [(2, "published"), (1, "published")]


def test_publishing_twice_is_refused(policy, owner):
    with pytest.raises(ValidationError, match="already published"):
        services.policy_version_publish(version=_v1(policy), user=owner)


def test_publish_with_a_stale_revision_is_a_conflict(policy, owner):
    draft = _draft(policy)
    _save_draft(draft, owner, body="changed")

    with pytest.raises(services.DraftConflict):
        services.policy_version_publish(version=draft, user=owner, revision=draft.revision)

    assert _reload(draft).status == PolicyVersion.Status.DRAFT


@pytest.mark.parametrize(
    ("labels", "rules", "section"),
    [
        (LABELS[:1], [{"id": "R1", "text": "Skills overlap."}], "labels"),
        ([], [{"id": "R1", "text": "Skills overlap."}], "labels"),
        (LABELS, [], "rules"),
    ],
)
def test_publish_needs_two_labels_and_one_rule(owner, labels, rules, section):
    policy = services.policy_create(
        slug="thin", name="Thin", task_description="Does it fit?", owner=owner, labels=labels, rules=rules
    )
    draft = _draft(policy)

    with pytest.raises(ValidationError) as caught:
        services.policy_version_publish(version=draft, user=owner)

    assert section in caught.value.message_dict
    stored = _reload(draft)
    assert stored.status == PolicyVersion.Status.DRAFT
    assert stored.published_at is None


# --- immutability -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        lambda v: setattr(v, "body", v.body + "\nOne more line."),
        lambda v: v.labels.append({"key": "maybe", "title": "Maybe", "definition": "Unsure."}),
        lambda v: v.rules[0].update(text="Something else entirely."),
        lambda v: setattr(v, "number", 7),
    ],
    ids=["body", "labels", "rules", "number"],
)
def test_published_version_cannot_be_edited(policy, change):
    v1 = _v1(policy)
    before = copy.deepcopy((v1.body, v1.labels, v1.rules, v1.content_hash))
    change(v1)

    with pytest.raises(ImmutableVersionError):
        v1.save()

    stored = _reload(v1)
    assert (stored.body, stored.labels, stored.rules, stored.content_hash) == before
    assert stored.number == 1


def test_published_version_cannot_go_back_to_draft(policy):
    v1 = _v1(policy)
    v1.status = PolicyVersion.Status.DRAFT

    with pytest.raises(ImmutableVersionError):
        v1.save()

    assert _reload(v1).status == PolicyVersion.Status.PUBLISHED


def test_published_version_cannot_be_deleted(policy):
    v1 = _v1(policy)

    with pytest.raises(ImmutableVersionError):
        v1.delete()

    assert PolicyVersion.objects.filter(pk=v1.pk).exists()


def test_database_refuses_bulk_update_of_a_published_version(policy):
    v1 = _v1(policy)

    with pytest.raises(IntegrityError, match="never changes"), transaction.atomic():
        PolicyVersion.objects.filter(pk=v1.pk).update(body="rewritten behind the model's back")

    assert _reload(v1).body == v1.body


def test_database_refuses_bulk_update_of_a_published_versions_rules(policy):
    v1 = _v1(policy)

    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.filter(pk=v1.pk).update(rules=[])

    assert _reload(v1).rules == v1.rules


def test_database_refuses_bulk_delete_of_a_published_version(policy):
    v1 = _v1(policy)

    with pytest.raises(IntegrityError, match="cannot be deleted"), transaction.atomic():
        PolicyVersion.objects.filter(pk=v1.pk).delete()

    assert PolicyVersion.objects.filter(pk=v1.pk).exists()


def test_database_still_allows_bulk_updates_of_a_draft(policy):
    draft = _draft(policy)

    PolicyVersion.objects.filter(pk=draft.pk).update(body="draft text")

    assert _reload(draft).body == "draft text"


def test_a_draft_can_be_deleted(policy):
    draft = _draft(policy)

    draft.delete()

    assert not policy.versions.filter(status=PolicyVersion.Status.DRAFT).exists()


def test_only_one_draft_per_policy_is_a_database_constraint(policy, owner):
    with pytest.raises(IntegrityError, match="one_draft_per_policy"), transaction.atomic():
        PolicyVersion.objects.create(policy=policy, number=3, author=owner, labels=LABELS, rules=[])

    assert policy.versions.filter(status=PolicyVersion.Status.DRAFT).count() == 1


def test_version_numbers_are_unique_per_policy(policy, owner):
    _draft(policy).delete()

    with pytest.raises(IntegrityError, match="unique_number"), transaction.atomic():
        PolicyVersion.objects.create(policy=policy, number=1, author=owner)


# --- drafts -------------------------------------------------------------------------------------------------
def test_draft_start_copies_the_latest_published_version(policy, owner):
    v1 = _v1(policy)
    draft = _draft(policy)
    draft.delete()

    started = services.policy_version_draft_start(policy=policy, user=owner)

    assert started.number == 2
    assert started.status == PolicyVersion.Status.DRAFT
    assert started.based_on == v1
    assert started.body == v1.body
    assert started.labels == v1.labels
    assert started.rules == v1.rules
    assert started.content_hash == v1.content_hash
    assert started.author == owner


def test_draft_start_copies_the_newest_published_version_not_the_first(policy, owner):
    v2 = _save_draft(_draft(policy), owner, body="Version two text.")
    services.policy_version_publish(version=v2, user=owner)

    v3 = services.policy_version_draft_start(policy=policy, user=owner)

    assert v3.number == 3
    assert v3.based_on_id == v2.pk
    assert v3.body == "Version two text."


def test_draft_start_returns_the_open_draft(policy, owner):
    draft = _save_draft(_draft(policy), owner, body="work in progress")

    again = services.policy_version_draft_start(policy=policy, user=owner)

    assert again.pk == draft.pk
    assert again.body == "work in progress"
    assert policy.versions.count() == 2


def test_editing_the_draft_leaves_the_published_version_alone(policy, owner):
    v1 = _v1(policy)
    draft = _draft(policy)
    rules = [dict(rule) for rule in draft.rules]
    rules[0]["text"] = "Changed in the draft."

    _save_draft(draft, owner, body="new body", rules=rules)

    stored = _reload(v1)
    assert stored.body == v1.body
    assert stored.rules == v1.rules
    assert stored.content_hash == v1.content_hash


def test_a_draft_can_be_saved_with_the_model(policy):
    draft = _draft(policy)
    draft.body = "edited directly"

    draft.save()

    assert _reload(draft).body == "edited directly"


# --- retiring -----------------------------------------------------------------------------------------------
def test_retire_a_published_version(policy, owner):
    v1 = _v1(policy)

    retired = services.policy_version_retire(version=v1, user=owner)

    stored = _reload(retired)
    assert stored.status == PolicyVersion.Status.RETIRED
    assert stored.retired_at is not None
    assert stored.content_hash == v1.content_hash
    assert stored.body == v1.body


def test_a_draft_cannot_be_retired(policy, owner):
    draft = _draft(policy)

    with pytest.raises(ValidationError, match="Only a published version"):
        services.policy_version_retire(version=draft, user=owner)

    assert _reload(draft).status == PolicyVersion.Status.DRAFT


def test_a_retired_version_cannot_be_retired_again_or_edited(policy, owner):
    v1 = services.policy_version_retire(version=_v1(policy), user=owner)

    with pytest.raises(ValidationError, match="Only a published version"):
        services.policy_version_retire(version=v1, user=owner)
    v1.body = "changed after retiring"
    with pytest.raises(ImmutableVersionError):
        v1.save()
    with pytest.raises(ImmutableVersionError):
        v1.delete()


# --- content hash -------------------------------------------------------------------------------------------
def _expected_hash(version: PolicyVersion) -> str:
    content = {"body": version.body, "labels": version.labels, "rules": version.rules}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_content_hash_is_sha256_of_canonical_json(policy):
    for version in policy.versions.all():
        assert version.content_hash == _expected_hash(version)
        assert len(version.content_hash) == 64


def test_content_hash_changes_when_content_changes(policy, owner):
    draft = _draft(policy)
    v1_hash = _v1(policy).content_hash
    assert draft.content_hash == v1_hash  # an untouched copy has the same content

    saved = _save_draft(draft, owner, body=draft.body + "\nA new paragraph.")

    stored = _reload(saved)
    assert stored.content_hash != v1_hash
    assert stored.content_hash == _expected_hash(stored)


def test_content_hash_changes_when_a_label_definition_changes(policy, owner):
    draft = _draft(policy)
    labels = [dict(label) for label in draft.labels]
    labels[1]["definition"] = "Some gaps, none of them must-haves."

    saved = _save_draft(draft, owner, labels=labels)

    assert saved.content_hash != draft.content_hash
    assert saved.content_hash == _expected_hash(_reload(saved))


def test_content_hash_is_stable_when_content_is_the_same(policy, owner):
    draft = _draft(policy)

    saved = _save_draft(draft, owner)

    assert saved.revision == draft.revision + 1
    assert saved.content_hash == draft.content_hash


def test_content_hash_covers_non_ascii_text_as_utf8(policy, owner):
    draft = _draft(policy)

    saved = _save_draft(draft, owner, body="Café – résumé: judge the naïve profile ✓")

    stored = _reload(saved)
    assert stored.body == "Café – résumé: judge the naïve profile ✓"
    assert stored.content_hash == _expected_hash(stored)
