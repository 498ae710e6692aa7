"""Writes for policies, versions and API tokens (one function per use case)."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import roles, selectors
from .labelmap import normalize_mapping, validate_mapping
from .models import (
    ApiToken,
    ContentError,
    ContentValidationError,
    Policy,
    PolicyVersion,
    PromptSnapshot,
    validate_content,
    validate_publishable,
)
from .prompts import build_system_prompt
from .queueing import enqueue

User = get_user_model()


class DraftConflict(Exception):
    """Someone saved the draft after the editor was opened. Carries the version as it is now."""

    def __init__(self, current: PolicyVersion):
        self.current = current
        super().__init__(
            f"This draft was saved by {current.author} at {current.updated_at:%H:%M:%S} after you opened it "
            f"(revision {current.revision})."
        )


OWNERS_ONLY = "Only policy owners can change policies."


# --- content normalisation ---------------------------------------------------------------------------------
def normalize_labels(labels: list[dict]) -> list[dict]:
    return [
        {
            "key": str(label.get("key", "")).strip(),
            "title": str(label.get("title", "") or "").strip(),
            "definition": str(label.get("definition", "") or "").strip(),
        }
        for label in labels
    ]


def _examples(value) -> list[str]:
    if isinstance(value, str):
        value = value.splitlines()
    return [str(example).strip() for example in value or [] if str(example).strip()]


def normalize_rules(rules: list[dict]) -> list[dict]:
    return [
        {
            "id": str(rule.get("id", "") or "").strip().upper(),
            "text": str(rule.get("text", "") or "").strip(),
            "positive_examples": _examples(rule.get("positive_examples")),
            "negative_examples": _examples(rule.get("negative_examples")),
        }
        for rule in rules
    ]


def _rule_number(rule_id: str) -> int:
    match = re.fullmatch(r"R([1-9][0-9]*)", rule_id)
    return int(match.group(1)) if match else 0


def _assign_rule_ids(*, version: PolicyVersion, rules: list[dict]) -> list[ContentError]:
    """Give new rules (blank ID) the next unused ID; refuse an ID that an earlier version retired.

    Rule IDs are stable: a rule keeps its ID across versions, and an ID, once published, never names a
    different rule.
    """
    published_ids = selectors.rule_ids_published(policy=version.policy)
    base_ids = set(version.based_on.rule_ids) if version.based_on else set()
    errors: list[ContentError] = []
    for index, rule in enumerate(rules):
        rule_id = rule["id"]
        if rule_id and rule_id in published_ids and rule_id not in base_ids:
            errors.append(
                ContentError(
                    "rules",
                    index,
                    "id",
                    f"{rule_id} belonged to a rule removed in an earlier version; IDs are never reused. "
                    "Leave the ID empty to get a new one.",
                )
            )
    next_number = max([_rule_number(r) for r in published_ids] + [_rule_number(r["id"]) for r in rules] + [0])
    for rule in rules:
        if not rule["id"]:
            next_number += 1
            rule["id"] = f"R{next_number}"
    return errors


# --- policies and versions ---------------------------------------------------------------------------------
def policy_create(
    *, slug: str, name: str, task_description: str, owner, body: str = "", labels=(), rules=(),
    idempotency_key: str = "",
) -> Policy:  # fmt: skip
    """Create a policy with its first draft (v1). The same ``idempotency_key`` (the API's header) from the same
    owner returns the policy the first call made instead of making another."""
    roles.require_role(owner, roles.POLICY_OWNER, message=OWNERS_ONLY)
    key = idempotency_key[:200]
    if key and (existing := selectors.policy_for_key(owner=owner, key=key)):
        return existing
    try:
        with transaction.atomic():
            return _policy_create(slug, name, task_description, owner, body, labels, rules, key)
    except (IntegrityError, ValidationError):
        # a concurrent retry with the key saved first (its row fails our unique checks, or the insert)
        if key and (existing := selectors.policy_for_key(owner=owner, key=key)):
            return existing
        raise


def _policy_create(slug, name, task_description, owner, body, labels, rules, key) -> Policy:
    policy = Policy(slug=slug, name=name, task_description=task_description, owner=owner, idempotency_key=key)
    policy.full_clean()
    policy.save()
    draft = PolicyVersion(
        policy=policy,
        number=1,
        body=body,
        labels=normalize_labels(list(labels)),
        rules=normalize_rules(list(rules)),
        author=owner,
    )
    _assign_rule_ids(version=draft, rules=draft.rules)  # a first version has no retired IDs to refuse
    if errors := validate_content(labels=draft.labels, rules=draft.rules):
        raise ContentValidationError(errors)  # each error names its label or rule, as a draft save's do
    draft.full_clean()
    draft.save()
    return policy


@transaction.atomic
def policy_version_draft_start(*, policy: Policy, user) -> PolicyVersion:
    """Start a draft as a copy of the latest published version (or return the draft already open)."""
    roles.require_role(user, roles.POLICY_OWNER, message=OWNERS_ONLY)
    Policy.objects.select_for_update().get(pk=policy.pk)  # serialise concurrent starts
    existing = policy.versions.filter(status=PolicyVersion.Status.DRAFT).first()
    if existing:
        return existing
    base = selectors.policy_latest_released(policy=policy)
    highest = policy.versions.order_by("-number").values_list("number", flat=True).first() or 0
    draft = PolicyVersion(
        policy=policy,
        number=highest + 1,
        body=base.body if base else "",
        labels=base.labels if base else [],
        rules=base.rules if base else [],
        based_on=base,
        author=user,
    )
    draft.full_clean()
    draft.save()
    return draft


def _mapping_errors(*, version: PolicyVersion, labels: list[dict], mapping) -> list[ContentError]:
    """The label mapping checked against the base version's labels, the draft's and the gold set's."""
    from labeling.selectors.labelmap import gold_keys_in_use  # labeling builds on this app

    old_keys = version.based_on.label_keys if version.based_on_id else []
    new_keys = [label["key"] for label in labels]
    used = gold_keys_in_use(policy=version.policy) if old_keys else set()
    return validate_mapping(mapping, old_keys=old_keys, new_keys=new_keys, used_keys=used)


def policy_version_draft_save(
    *, version: PolicyVersion, user, revision: int, body: str, labels: list[dict], rules: list[dict],
    label_mapping: dict | None = None,
) -> PolicyVersion:  # fmt: skip
    """Save a draft's content if nobody saved it since ``revision``; otherwise raise :class:`DraftConflict`.
    ``label_mapping`` (``{old key: [new key, …]}``; None keeps the draft's) says how the base version's labels
    map to the draft's.

    Invalid content raises ``ValidationError`` with messages by field and changes nothing.
    """
    roles.require_role(user, roles.POLICY_OWNER, message=OWNERS_ONLY)
    if not version.is_draft:
        raise ValidationError(f"Version {version.number} is {version.status}; only a draft can be edited.")
    labels, rules = normalize_labels(labels), normalize_rules(rules)
    mapping = normalize_mapping(version.label_mapping if label_mapping is None else label_mapping)
    errors = _assign_rule_ids(version=version, rules=rules)
    errors += validate_content(labels=labels, rules=rules)
    if not errors:
        errors += _mapping_errors(version=version, labels=labels, mapping=mapping)
    if errors:
        raise ContentValidationError(errors)
    candidate = PolicyVersion(
        pk=version.pk, policy=version.policy, number=version.number, body=body, labels=labels, rules=rules,
        label_mapping=mapping,
    )  # fmt: skip
    content_hash = candidate.compute_content_hash()
    with transaction.atomic():
        updated = PolicyVersion.objects.filter(
            pk=version.pk, status=PolicyVersion.Status.DRAFT, revision=revision
        ).update(
            body=body,
            labels=labels,
            rules=rules,
            label_mapping=mapping,
            content_hash=content_hash,
            author=user,
            revision=F("revision") + 1,
            updated_at=timezone.now(),
        )
    current = PolicyVersion.objects.select_related("policy", "author").get(pk=version.pk)
    if not updated:
        if not current.is_draft:
            raise ValidationError(f"Version {current.number} was {current.status} meanwhile; it cannot be edited.")
        raise DraftConflict(current)
    return current


@transaction.atomic
def policy_version_publish(
    *, version: PolicyVersion, user, revision: int | None = None, override_reason: str | None = None
) -> PolicyVersion:
    """Publish a draft: it becomes immutable; its prompt is frozen by a Celery task after commit.

    The policy's quality gates are checked on the draft's latest fresh preview first (``labeling.services.gates``):
    a failing gate refuses publishing unless ``override_reason`` says why to go ahead anyway; the version gets its
    gate record (figures, thresholds, results, who overrode and why) in the same transaction. A label mapping is
    checked again (the gold set may have changed) and applied to the gold set (``labeling.services.labelmap``);
    gold items of a split label wait for their new label like a failing gate."""
    from labeling.services.gates import gate_record_create, publish_gate_check  # labeling builds on this app
    from labeling.services.labelmap import gold_apply_label_mapping

    roles.require_role(user, roles.POLICY_OWNER, message=OWNERS_ONLY)
    locked = PolicyVersion.objects.select_for_update().select_related("policy").get(pk=version.pk)
    if not locked.is_draft:
        raise ValidationError(f"Version {locked.number} is already {locked.status}.")
    if revision is not None and locked.revision != revision:
        raise DraftConflict(locked)
    errors = validate_content(labels=locked.labels, rules=locked.rules)
    errors += validate_publishable(labels=locked.labels, rules=locked.rules)
    if not errors and locked.based_on_id:  # gold may have started using a label the draft removes since it was saved
        errors += _mapping_errors(version=locked, labels=locked.labels, mapping=locked.label_mapping)
    if errors:
        raise ContentValidationError(errors)
    check = publish_gate_check(draft=locked, user=user, override_reason=override_reason)
    locked.status = PolicyVersion.Status.PUBLISHED
    locked.published_at = timezone.now()
    locked.published_by = user
    locked.full_clean()
    locked.save()
    gate_record_create(version=locked, check=check, user=user, override_reason=override_reason)
    gold_apply_label_mapping(version=locked, user=user, override_reason=override_reason)
    enqueue("policyhub.tasks.policy_version_freeze_prompt", locked.pk)
    return locked


@transaction.atomic
def policy_version_retire(*, version: PolicyVersion, user) -> PolicyVersion:
    """Retire a published version: it stays readable but is no longer offered for new runs."""
    roles.require_role(user, roles.POLICY_OWNER, message=OWNERS_ONLY)
    locked = PolicyVersion.objects.select_for_update().get(pk=version.pk)
    if locked.status != PolicyVersion.Status.PUBLISHED:
        raise ValidationError(f"Only a published version can be retired; version {locked.number} is {locked.status}.")
    locked.status = PolicyVersion.Status.RETIRED
    locked.retired_at = timezone.now()
    locked.save()
    return locked


def prompt_snapshot_store(*, version_id: int) -> PromptSnapshot:
    """Freeze the system prompt of a published version (idempotent: a second call overwrites the row)."""
    version = PolicyVersion.objects.select_related("policy").get(pk=version_id)
    if version.is_draft:
        raise ValidationError("Only published versions have a frozen prompt.")
    prompt = build_system_prompt(version)
    snapshot, _ = PromptSnapshot.objects.update_or_create(
        version=version,
        defaults={
            "content_hash": version.content_hash,
            "system_prompt": prompt,
            "prompt_sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
        },
    )
    return snapshot


# --- API tokens ---------------------------------------------------------------------------------------------
TOKEN_PREFIX = "phk_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # shown once; never stored


#: How long a new token may live, in days (None: never expires); the token page offers these.
TOKEN_LIFETIMES_DAYS: tuple[int | None, ...] = (30, 90, 365, None)
DEFAULT_TOKEN_LIFETIME_DAYS = 90
#: ``last_used_at`` is written at most this often per token, so a busy client costs no write per request.
TOKEN_USE_RESOLUTION_SECONDS = 60


class ApiTokenExpired(Exception):
    """The token is known and not revoked, but its expiry has passed."""

    def __init__(self, token: ApiToken):
        self.token = token
        super().__init__(
            f"This API token ({token.prefix}…) expired on {token.expires_at:%Y-%m-%d %H:%M} UTC: create a new one on "
            "the API tokens page."
        )


def api_token_create(*, user, name: str, lifetime_days: int | None = DEFAULT_TOKEN_LIFETIME_DAYS) -> IssuedToken:
    """Issue a token for ``user`` that expires after ``lifetime_days`` (one of TOKEN_LIFETIMES_DAYS; None: never)."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Give the token a name, e.g. 'laptop' or 'training pipeline'."]})
    if len(name) > 100:
        raise ValidationError({"name": ["The name is longer than 100 characters."]})
    if lifetime_days not in TOKEN_LIFETIMES_DAYS:
        choices = ", ".join(f"{days} days" if days else "never" for days in TOKEN_LIFETIMES_DAYS)
        raise ValidationError({"expires": [f"A token expires after {choices}; not {lifetime_days!r}."]})
    if not roles.user_roles(user):
        raise PermissionDenied("Only users with a role can have API tokens.")
    expires_at = timezone.now() + timedelta(days=lifetime_days) if lifetime_days else None
    for _ in range(3):
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user, name=name, prefix=raw[: len(TOKEN_PREFIX) + 6], token_hash=hash_token(raw),
                    expires_at=expires_at,
                )  # fmt: skip
            return IssuedToken(token=token, raw=raw)
        except IntegrityError:  # pragma: no cover - a 256-bit collision
            continue
    raise RuntimeError("Could not issue a unique token")


def api_token_revoke(*, token: ApiToken, user) -> ApiToken:
    if token.user_id != user.pk and not user.is_staff:
        raise PermissionDenied("You can only revoke your own tokens.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(*, raw: str):
    """The active user owning the unrevoked token ``raw``, or None; :class:`ApiTokenExpired` when it has expired.
    Records when the token was last used (at most once a minute)."""
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    if token.is_expired:
        raise ApiTokenExpired(token)
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > TOKEN_USE_RESOLUTION_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
