"""Reads for policies and versions, filtered by what the caller's role may see."""

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from . import roles
from .labelmap import effective_mapping
from .models import Policy, PolicyVersion

VISIBLE_TO_READERS = (PolicyVersion.Status.PUBLISHED, PolicyVersion.Status.RETIRED)


def can_see_drafts(user) -> bool:
    return roles.has_role(user, roles.POLICY_OWNER)


def policy_list(*, user) -> QuerySet[Policy]:
    """Policy owners see every policy; other roles see policies with at least one published version."""
    qs = Policy.objects.select_related("owner").order_by("name")
    if can_see_drafts(user):
        return qs
    published = PolicyVersion.objects.filter(policy=OuterRef("pk"), status__in=VISIBLE_TO_READERS)
    return qs.filter(Exists(published))


def policy_get(*, user, slug: str) -> Policy:
    policy = policy_list(user=user).filter(slug=slug).first()
    if policy is None:
        raise Http404(f"No policy {slug!r}.")
    return policy


def policy_for_key(*, owner, key: str) -> Policy | None:
    """The policy ``owner`` created with this API ``Idempotency-Key`` (None for none, or no key)."""
    if not key:
        return None
    return Policy.objects.filter(owner=owner, idempotency_key=key[:200]).first()


def version_list(*, user, policy: Policy) -> QuerySet[PolicyVersion]:
    qs = policy.versions.select_related("author", "published_by").order_by("-number")
    return qs if can_see_drafts(user) else qs.filter(status__in=VISIBLE_TO_READERS)


def version_get(*, user, policy: Policy, number: int) -> PolicyVersion:
    version = version_list(user=user, policy=policy).filter(number=number).first()
    if version is None:
        raise Http404(f"{policy.slug} has no version {number} you can see.")
    return version


def policy_draft(*, policy: Policy) -> PolicyVersion | None:
    return policy.versions.filter(status=PolicyVersion.Status.DRAFT).select_related("author").first()


def policy_latest_released(*, policy: Policy) -> PolicyVersion | None:
    """The newest published or retired version: what a new draft starts from."""
    return policy.versions.filter(status__in=VISIBLE_TO_READERS).order_by("-number").first()


def rule_ids_published(*, policy: Policy) -> set[str]:
    """Every rule ID any published or retired version of ``policy`` has used."""
    ids: set[str] = set()
    for rules in policy.versions.filter(status__in=VISIBLE_TO_READERS).values_list("rules", flat=True):
        ids.update(rule["id"] for rule in rules)
    return ids


def forward_translation(*, version: PolicyVersion) -> dict[str, list[str]]:
    """How ``version``'s labels read in the gold set's (the latest published version's, since publishing a mapping
    rewrites gold): {key: [gold keys]} composed through the mappings of the versions published after it; ``{}``
    when none of them maps labels (the keys are the same). ``labelmap.translate`` reads one label through it."""
    later = (
        PolicyVersion.objects.filter(
            policy_id=version.policy_id, number__gt=version.number, status__in=VISIBLE_TO_READERS
        )
        .exclude(label_mapping={})
        .select_related("based_on")
        .order_by("number")
    )
    current = {key: [key] for key in version.label_keys}
    changed = False
    for step in later:
        if step.based_on_id is None:
            continue
        mapping = effective_mapping(step.label_mapping, old_keys=step.based_on.label_keys, new_keys=step.label_keys)
        current = {
            key: list(dict.fromkeys(new for old in keys for new in mapping.get(old, [old])))
            for key, keys in current.items()
        }
        changed = True
    return current if changed else {}
