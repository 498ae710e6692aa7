"""Policies and their versions.

A version's content (body, labels, rules) lives on the version row as JSON; its ``content_hash`` is the sha256
of the canonical JSON of that content. Published (and retired) versions never change content: ``save`` refuses
it, ``delete`` refuses it, and on PostgreSQL a trigger refuses it even for ``QuerySet.update``.
"""

import hashlib
import json
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

RULE_ID_RE = re.compile(r"^R[1-9][0-9]*$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CONTENT_FIELDS = ("body", "labels", "rules", "label_mapping")


class ImmutableVersionError(ValidationError):
    """Raised when code tries to change or delete a published (or retired) version."""


class Policy(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    task_description = models.TextField(
        help_text="What the teacher is asked to decide, e.g. 'Is this job a good match for this member?'"
    )
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_policies")
    created_at = models.DateTimeField(auto_now_add=True)
    #: The API's ``Idempotency-Key`` of the request that created it: the same key from the same owner returns it.
    idempotency_key = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="policy_idempotency_key",
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        return self.name


class PolicyVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        RETIRED = "retired", "Retired"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, … A draft holds the number it will be published as.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    body = models.TextField(blank=True, help_text="Markdown: the policy's free text.")
    labels = models.JSONField(default=list, blank=True, help_text="[{key, title, definition}, …]")
    rules = models.JSONField(
        default=list, blank=True, help_text="[{id, text, positive_examples: […], negative_examples: […]}, …]"
    )
    label_mapping = models.JSONField(
        default=dict, blank=True,
        help_text="{old key: [new key, …]} from the labels of ``based_on``: one key renames or merges, several "
        "split. Kept labels are implicit. Part of the content (and its hash) once not empty.",
    )  # fmt: skip
    content_hash = models.CharField(max_length=64, editable=False)
    revision = models.PositiveIntegerField(default=1, help_text="Bumped on every draft save; guards stale saves.")
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="policyversion_unique_number"),
            models.UniqueConstraint(
                fields=["policy"], condition=Q(status="draft"), name="policyversion_one_draft_per_policy"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(published_at__isnull=False),
                name="policyversion_published_has_timestamp",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="policyversion_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.policy.slug} v{self.number} ({self.status})"

    # --- content ------------------------------------------------------------------------------------------
    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    def canonical_content(self) -> dict:
        """The hashed content. The label mapping joins it only when there is one, so versions without a mapping
        keep the hash they always had."""
        content = {"body": self.body, "labels": self.labels, "rules": self.rules}
        if self.label_mapping:
            content["label_mapping"] = self.label_mapping
        return content

    def compute_content_hash(self) -> str:
        canonical = json.dumps(self.canonical_content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def label_keys(self) -> list[str]:
        return [label["key"] for label in self.labels]

    @property
    def rule_ids(self) -> list[str]:
        return [rule["id"] for rule in self.rules]

    # --- invariants ---------------------------------------------------------------------------------------
    def clean(self) -> None:
        errors = validate_content(labels=self.labels, rules=self.rules)
        if self.label_mapping:
            from .labelmap import validate_mapping

            old_keys = self.based_on.label_keys if self.based_on_id else []
            errors += validate_mapping(self.label_mapping, old_keys=old_keys, new_keys=self.label_keys)
        if self.status != self.Status.DRAFT:
            errors += validate_publishable(labels=self.labels, rules=self.rules)
        if errors:
            raise ContentValidationError(errors)

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            stored = PolicyVersion.objects.filter(pk=self.pk).values("status", "content_hash", "number").first()
            if stored and stored["status"] != self.Status.DRAFT:
                if self.compute_content_hash() != stored["content_hash"] or self.number != stored["number"]:
                    raise ImmutableVersionError(
                        f"Version {stored['number']} is {stored['status']}: its content never changes. "
                        "Start a new draft instead."
                    )
                if self.status == self.Status.DRAFT:
                    raise ImmutableVersionError("A published version cannot go back to draft.")
        self.content_hash = self.compute_content_hash()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.status != self.Status.DRAFT:
            raise ImmutableVersionError(f"Version {self.number} is {self.status} and cannot be deleted.")
        return super().delete(*args, **kwargs)


@dataclass(frozen=True)
class ContentError:
    """One problem in a version's content: ``section`` labels|rules|label_mapping, ``index`` the 0-based row
    (None: the whole section), ``field`` the row's field (key, definition, id, text, …; a mapping's old key) so an
    editor can show it by the field."""

    section: str
    index: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        if self.index is None or self.section == "label_mapping":  # a mapping error names its old key itself
            return self.message
        return f"{self.section[:-1].title()} {self.index + 1}: {self.message}"


class ContentValidationError(ValidationError):
    """Invalid labels or rules; ``content_errors`` keeps where each problem is."""

    def __init__(self, errors: list[ContentError]):
        self.content_errors = errors
        by_section: dict[str, list[str]] = {}
        for error in errors:
            by_section.setdefault(error.section, []).append(str(error))
        super().__init__(by_section)


def validate_content(*, labels: list, rules: list) -> list[ContentError]:
    """Shape and uniqueness checks for a version's labels and rules."""
    if not isinstance(labels, list) or not all(isinstance(item, dict) for item in labels):
        return [ContentError("labels", None, None, "Labels must be a list of {key, title, definition} objects.")]
    if not isinstance(rules, list) or not all(isinstance(item, dict) for item in rules):
        return [ContentError("rules", None, None, "Rules must be a list of {id, text, …} objects.")]
    errors: list[ContentError] = []
    seen_keys: set[str] = set()
    for index, label in enumerate(labels):
        key = label.get("key", "")
        if not isinstance(key, str) or not LABEL_KEY_RE.match(key):
            errors.append(
                ContentError(
                    "labels",
                    index,
                    "key",
                    f"The key {key!r} must be lower-case letters, digits and underscores, starting with a letter.",
                )
            )
        elif key in seen_keys:
            errors.append(ContentError("labels", index, "key", f"The key {key!r} is used twice."))
        seen_keys.add(key)
        if not str(label.get("definition", "")).strip():
            errors.append(ContentError("labels", index, "definition", "The definition is empty."))
    seen_ids: set[str] = set()
    for index, rule in enumerate(rules):
        rule_id = rule.get("id", "")
        if not isinstance(rule_id, str) or not RULE_ID_RE.match(rule_id):
            errors.append(ContentError("rules", index, "id", f"The ID {rule_id!r} must look like R1, R2, …"))
        elif rule_id in seen_ids:
            errors.append(ContentError("rules", index, "id", f"The ID {rule_id} is used twice."))
        seen_ids.add(rule_id)
        if not str(rule.get("text", "")).strip():
            errors.append(ContentError("rules", index, "text", "The rule text is empty."))
        for field in ("positive_examples", "negative_examples"):
            examples = rule.get(field, [])
            if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
                errors.append(ContentError("rules", index, field, "Examples must be a list of text."))
    return errors


def validate_publishable(*, labels: list, rules: list) -> list[ContentError]:
    """What a version needs before the teacher can use it."""
    errors: list[ContentError] = []
    if len(labels) < 2:
        errors.append(ContentError("labels", None, None, "A published version needs at least two labels."))
    if not rules:
        errors.append(ContentError("rules", None, None, "A published version needs at least one rule."))
    return errors


class PromptSnapshot(models.Model):
    """The system prompt of a published version, frozen by a Celery task right after publishing.

    The teacher reads this row, so a later change to the prompt builder never silently changes what a published
    version asked the teacher. Keyed by version: a re-delivered task overwrites, never duplicates.
    """

    version = models.OneToOneField(PolicyVersion, on_delete=models.CASCADE, related_name="prompt_snapshot")
    content_hash = models.CharField(max_length=64)
    system_prompt = models.TextField()
    prompt_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"prompt of {self.version}"


class ApiToken(models.Model):
    """A per-user API token. Only its sha256 is stored; the token itself is shown once, at creation.
    ``expires_at`` is chosen at creation (NULL: never expires, as for tokens made before expiry existed)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The first characters, to recognise a token in lists.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most once a minute.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the token never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def state(self) -> str:
        """active, expired or revoked, with when."""
        if self.revoked_at is not None:
            return f"revoked {self.revoked_at:%Y-%m-%d %H:%M}"
        if self.is_expired:
            return f"expired {self.expires_at:%Y-%m-%d %H:%M}"
        return "active"
