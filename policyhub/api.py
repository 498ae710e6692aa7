"""Policy endpoints of the JSON API: policies, versions, diffs, prompts, drafts, and ``/me``.

The router is mounted on the API root (``policyhub/api_root.py``) in ``policyhub/urls.py``.
"""

from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from labeling.api.gates import gate_check_out
from labeling.services.gates import GateError

from . import roles, selectors, services
from .api_root import IDEMPOTENT, ErrorOut, TextIn, form_invalid, require_role
from .diffing import version_diff
from .forms import PolicyCreateForm
from .models import PolicyVersion
from .prompts import build_system_prompt, frozen_prompt


# --- schemas -------------------------------------------------------------------------------------------------
class LabelSchema(Schema):
    key: str
    title: str = ""
    definition: str


class RuleSchema(Schema):
    id: str = ""
    text: str
    positive_examples: list[str] = []
    negative_examples: list[str] = []


class VersionSummary(Schema):
    number: int
    status: str
    content_hash: str
    revision: int
    published_at: str | None


class VersionOut(VersionSummary):
    policy: str
    body: str
    labels: list[LabelSchema]
    rules: list[RuleSchema]
    label_mapping: dict[str, list[str]] = Field(
        description="How the labels of the version it is based on map to these: {old key: [new key, …]}; one key "
        "renames or merges, several split. Labels kept under their key are not listed."
    )
    based_on: int | None = Field(description="The version number this one started from (the mapping's old side).")
    author: str
    created_at: str
    updated_at: str


class PolicyOut(Schema):
    slug: str
    name: str
    task_description: str
    owner: str
    latest_published: int | None
    versions: list[VersionSummary]


class DraftIn(TextIn):
    revision: int
    body: str = ""
    labels: list[LabelSchema]
    rules: list[RuleSchema]
    label_mapping: dict[str, list[str]] | None = Field(
        None,
        description="{old key: [new key, …]} from the base version's labels (rename/merge: one key, split: "
        "several); null or absent keeps the draft's mapping, {} clears it.",
    )


class PolicyIn(TextIn):
    slug: str = Field(description="Letters, digits, - and _; unique.")
    name: str
    task_description: str = Field(description="What the teacher is asked to decide.")
    body: str = ""
    labels: list[LabelSchema] = []
    rules: list[RuleSchema] = []


class PolicyInvalidOut(Schema):
    """A 400 of a create: ``errors`` is by form field (``{"slug": ["…"]}``) or, for the content, a list of
    ``{section, index, field, message}`` (as a draft save answers); none when the body could not be read at all."""

    detail: str
    errors: dict[str, list[str]] | list[dict] = {}


class PublishIn(TextIn):
    revision: int
    override_reason: str | None = Field(
        None,
        description="Publish even though quality gates fail: why (kept on the version's gate record). Leave it "
        "out unless a gate blocks; an empty reason is refused.",
    )


class PromptOut(Schema):
    policy: str
    number: int
    content_hash: str
    frozen: bool
    system_prompt: str


class ItemChangeOut(Schema):
    key: str
    change: str
    changed_fields: list[str]
    old: dict | None
    new: dict | None


class DiffOut(Schema):
    policy: str
    old: int
    new: int
    body_changed: bool
    body_diff: list[dict]
    labels: list[ItemChangeOut]
    rules: list[ItemChangeOut]
    label_mapping: list[dict] = Field(
        description="The new version's mapping from the old one's labels ({old, new: […], kind}); [] unless the "
        "new version is based on the old one and maps labels."
    )


class MeOut(Schema):
    username: str
    roles: list[str]


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _summary(version: PolicyVersion) -> dict:
    return {
        "number": version.number,
        "status": version.status,
        "content_hash": version.content_hash,
        "revision": version.revision,
        "published_at": _iso(version.published_at),
    }


def _version_out(version: PolicyVersion) -> dict:
    return {
        **_summary(version),
        "policy": version.policy.slug,
        "body": version.body,
        "labels": version.labels,
        "rules": version.rules,
        "label_mapping": version.label_mapping,
        "based_on": version.based_on.number if version.based_on_id else None,
        "author": version.author.get_username(),
        "created_at": _iso(version.created_at),
        "updated_at": _iso(version.updated_at),
    }


# --- endpoints -----------------------------------------------------------------------------------------------
router = Router(tags=["policies"])
ERRORS = {400: dict, 403: ErrorOut, 404: ErrorOut, 409: dict}


@router.get("/me", response=MeOut, tags=["account"])
def me(request):
    return {"username": request.auth.get_username(), "roles": sorted(roles.user_roles(request.auth))}


@router.get("/policies", response=list[PolicyOut])
def list_policies(request):
    require_role(request, *roles.READERS)
    return [_policy_out(request, policy) for policy in selectors.policy_list(user=request.auth)]


def _policy_out(request, policy) -> dict:
    versions = list(selectors.version_list(user=request.auth, policy=policy))
    latest = next((v.number for v in versions if v.status == PolicyVersion.Status.PUBLISHED), None)
    return {
        "slug": policy.slug,
        "name": policy.name,
        "task_description": policy.task_description,
        "owner": policy.owner.get_username(),
        "latest_published": latest,
        "versions": [_summary(v) for v in versions],
    }


@router.post(
    "/policies",
    response={200: PolicyOut, 201: PolicyOut, 400: PolicyInvalidOut, 403: ErrorOut},
    openapi_extra=IDEMPOTENT,
)
def create_policy(request, payload: PolicyIn):
    """Create a policy with its first draft v1 (201), from the page's form; a field it refuses (a slug taken, a
    label or rule that does not validate) is a 400 naming it and nothing is saved. Send an ``Idempotency-Key``
    header: the same key from the same owner returns the policy it made (200)."""
    require_role(request, roles.POLICY_OWNER)
    key = request.headers.get("Idempotency-Key", "")[:200]
    if existing := selectors.policy_for_key(owner=request.auth, key=key):
        return Status(200, _policy_out(request, existing))
    form = PolicyCreateForm(payload.dict(include={"slug", "name", "task_description"}))
    if not form.is_valid():
        if existing := selectors.policy_for_key(owner=request.auth, key=key):  # a concurrent retry won
            return Status(200, _policy_out(request, existing))
        return form_invalid(form)
    content = payload.dict(include={"body", "labels", "rules"})
    policy = services.policy_create(owner=request.auth, idempotency_key=key, **form.cleaned_data, **content)
    return Status(201, _policy_out(request, policy))


@router.get("/policies/{slug}", response={200: PolicyOut, **ERRORS})
def get_policy(request, slug: str):
    require_role(request, *roles.READERS)
    return _policy_out(request, selectors.policy_get(user=request.auth, slug=slug))


@router.get("/policies/{slug}/versions/{number}", response={200: VersionOut, **ERRORS})
def get_version(request, slug: str, number: int):
    require_role(request, *roles.READERS)
    policy = selectors.policy_get(user=request.auth, slug=slug)
    return _version_out(selectors.version_get(user=request.auth, policy=policy, number=number))


@router.get("/policies/{slug}/versions/{number}/prompt", response={200: PromptOut, **ERRORS})
def get_prompt(request, slug: str, number: int):
    require_role(request, *roles.READERS)
    policy = selectors.policy_get(user=request.auth, slug=slug)
    version = selectors.version_get(user=request.auth, policy=policy, number=number)
    snapshot = frozen_prompt(version)
    return {
        "policy": policy.slug,
        "number": version.number,
        "content_hash": version.content_hash,
        "frozen": snapshot is not None,
        "system_prompt": snapshot.system_prompt if snapshot else build_system_prompt(version),
    }


@router.get("/policies/{slug}/diff", response={200: DiffOut, **ERRORS})
def get_diff(request, slug: str, old: int, new: int):
    """Compare version ``old`` with version ``new`` (labels by key, rules by ID, body line by line)."""
    require_role(request, *roles.READERS)
    policy = selectors.policy_get(user=request.auth, slug=slug)
    diff = version_diff(
        selectors.version_get(user=request.auth, policy=policy, number=old),
        selectors.version_get(user=request.auth, policy=policy, number=new),
    )
    return {
        "policy": policy.slug,
        "old": old,
        "new": new,
        "body_changed": diff.body_changed,
        "body_diff": [row.__dict__ for row in diff.body_rows if row.kind != "equal"],
        "labels": [_change(c) for c in diff.changed_labels],
        "rules": [_change(c) for c in diff.changed_rules],
        "label_mapping": [{"old": r.old, "new": list(r.new), "kind": r.kind} for r in diff.label_mapping],
    }


def _change(change) -> dict:
    return {
        "key": change.key,
        "change": change.change,
        "changed_fields": list(change.changed_fields),
        "old": change.old,
        "new": change.new,
    }


@router.post("/policies/{slug}/draft", response={200: VersionOut, **ERRORS})
def start_draft(request, slug: str):
    """Open a draft copied from the latest published version (returns the open draft if there is one)."""
    require_role(request, roles.POLICY_OWNER)
    policy = selectors.policy_get(user=request.auth, slug=slug)
    return _version_out(services.policy_version_draft_start(policy=policy, user=request.auth))


@router.put("/policies/{slug}/draft", response={200: VersionOut, **ERRORS})
def save_draft(request, slug: str, payload: DraftIn):
    """Replace the draft's content. ``revision`` must be the draft's current revision, else 409."""
    require_role(request, roles.POLICY_OWNER)
    policy = selectors.policy_get(user=request.auth, slug=slug)
    draft = selectors.policy_draft(policy=policy)
    if draft is None:
        raise HttpError(404, f"{slug} has no draft; POST /api/policies/{slug}/draft to start one.")
    data = payload.dict()
    version = services.policy_version_draft_save(version=draft, user=request.auth, **data)
    return _version_out(version)


@router.post("/policies/{slug}/draft/publish", response={200: VersionOut, **ERRORS})
def publish_draft(request, slug: str, payload: PublishIn):
    """Publish the draft at ``revision``. When the policy has quality gates, the draft's latest fresh preview must
    pass them: otherwise 400 with ``gates`` (each gate's result, or ``needs_preview``), unless ``override_reason``
    says why to publish anyway. The version's gate record is ``GET …/versions/{number}/gates``."""
    require_role(request, roles.POLICY_OWNER)
    policy = selectors.policy_get(user=request.auth, slug=slug)
    draft = selectors.policy_draft(policy=policy)
    if draft is None:
        raise HttpError(404, f"{slug} has no draft to publish.")
    try:
        version = services.policy_version_publish(
            version=draft, user=request.auth, revision=payload.revision, override_reason=payload.override_reason
        )
    except GateError as refused:  # the quality gates: say why, with every gate's result
        return Status(400, {"detail": refused.messages[0], "gates": gate_check_out(refused.check)})
    return _version_out(version)
