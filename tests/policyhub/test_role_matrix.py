"""Every browser page against every role: anonymous users are sent to log in, users without a role get 403,
annotators and ML engineers read published versions only, policy owners and staff may do everything.
A refused request never changes anything."""

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

from labeling.models import GoldRelabel, QualityGates
from policyhub import roles
from policyhub.models import ApiToken, Policy, PolicyVersion

from .test_draft_editor_view import editor_post_data

SLUG = "match"


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    path: str  # {token} is the id of an API token of the acting user
    reader: int  # status for annotators and ML engineers
    owner: int  # status for policy owners and staff
    owner_redirect: str | None = None
    reader_redirect: str | None = None
    data: object = field(default=None, repr=False)  # callable(draft) -> POST data


def _draft(policy):
    return policy.versions.get(number=2)


PAGES = [
    Page("policy list", "get", "/", 200, 200),
    Page("policy create form", "get", "/policies/new/", 403, 200),
    Page(
        "policy create",
        "post",
        "/policies/new/",
        403,
        302,
        owner_redirect="/policies/other/draft/",
        data=lambda draft: {"slug": "other", "name": "Other", "task_description": "Another task."},
    ),
    Page("policy history", "get", f"/policies/{SLUG}/", 200, 200),
    Page("published version", "get", f"/policies/{SLUG}/v1/", 200, 200),
    Page("draft version", "get", f"/policies/{SLUG}/v2/", 404, 200),
    Page("published prompt", "get", f"/policies/{SLUG}/v1/prompt/", 200, 200),
    Page("draft prompt", "get", f"/policies/{SLUG}/v2/prompt/", 404, 200),
    Page("compare with draft", "get", f"/policies/{SLUG}/compare/?from=1&to=2", 404, 200),
    Page("draft editor", "get", f"/policies/{SLUG}/draft/", 403, 200),
    Page("feedback inbox", "get", f"/policies/{SLUG}/feedback/", 200, 200),
    Page(
        "draft save",
        "post",
        f"/policies/{SLUG}/draft/",
        403,
        302,
        owner_redirect=f"/policies/{SLUG}/draft/",
        data=lambda draft: editor_post_data(draft, body="Edited through the role matrix."),
    ),
    Page(
        "draft start",
        "post",
        f"/policies/{SLUG}/draft/start/",
        403,
        302,
        owner_redirect=f"/policies/{SLUG}/draft/",
        data=lambda draft: {},
    ),
    Page(
        "draft publish",
        "post",
        f"/policies/{SLUG}/draft/publish/",
        403,
        302,
        owner_redirect=f"/policies/{SLUG}/v2/",
        data=lambda draft: {"revision": str(draft.revision)},
    ),
    Page(
        "markdown preview",
        "post",
        f"/policies/{SLUG}/draft/preview/",
        403,
        200,
        data=lambda draft: {"body": "**bold**"},
    ),
    Page(
        "retire",
        "post",
        f"/policies/{SLUG}/v1/retire/",
        403,
        302,
        owner_redirect=f"/policies/{SLUG}/",
        data=lambda draft: {},
    ),
    Page("quality gates form", "get", f"/policies/{SLUG}/gates/", 403, 200),
    Page(
        "quality gates save",
        "post",
        f"/policies/{SLUG}/gates/",
        403,
        302,
        owner_redirect=f"/policies/{SLUG}/",
        data=lambda draft: {"min_gold_accuracy": "0.75", "require_red_team_run": "on"},
    ),
    Page("publish check", "get", f"/policies/{SLUG}/draft/publish/", 403, 200),
    Page("relabel list", "get", f"/policies/{SLUG}/draft/relabel/", 403, 200),
    Page(  # the draft splits no label: an owner is told so (400), nothing changes
        "relabel gold",
        "post",
        f"/policies/{SLUG}/draft/relabel/",
        403,
        400,
        data=lambda draft: {"pair": "1", "label": "strong_match"},
    ),
    Page("token list", "get", "/account/tokens/", 200, 200),
    Page(
        "token revoke",
        "post",
        "/account/tokens/{token}/revoke/",
        302,
        302,
        owner_redirect="/account/tokens/",
        reader_redirect="/account/tokens/",
        data=lambda draft: {},
    ),
    Page("label studio account", "get", "/account/labelstudio/", 200, 200),
    Page(
        "label studio unlink",
        "post",
        "/account/labelstudio/unlink/",
        302,
        302,
        owner_redirect="/account/labelstudio/",
        reader_redirect="/account/labelstudio/",
        data=lambda draft: {},
    ),
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The matrix creates two users per case; hashing their passwords properly is the slowest part."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


ROLES = ["anonymous", "nobody", "annotator", "engineer", "owner", "staff"]


def _effect_checks(page: Page, policy, token):
    """What an allowed request visibly did."""
    if page.name == "policy create":
        created = Policy.objects.get(slug="other")
        assert created.versions.get().status == PolicyVersion.Status.DRAFT
    elif page.name == "draft save":
        assert _draft(policy).body == "Edited through the role matrix."
    elif page.name == "draft publish":
        assert policy.versions.get(number=2).status == PolicyVersion.Status.PUBLISHED
        assert not policy.versions.get(number=2).gate_record.gates_configured
    elif page.name == "quality gates save":
        gates = QualityGates.objects.get(policy=policy)
        assert (gates.min_gold_accuracy, gates.max_flip_rate, gates.require_red_team_run) == (0.75, None, True)
    elif page.name == "relabel gold":
        assert not GoldRelabel.objects.exists()
    elif page.name == "retire":
        assert policy.versions.get(number=1).status == PolicyVersion.Status.RETIRED
    elif page.name == "token revoke":
        token.refresh_from_db()
        assert token.revoked_at is not None


def _state():
    return {
        "policies": list(Policy.objects.order_by("slug").values_list("slug", "name")),
        "versions": list(
            PolicyVersion.objects.order_by("policy__slug", "number").values_list(
                "policy__slug", "number", "status", "revision", "content_hash", "body"
            )
        ),
        "tokens": list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        "gates": list(QualityGates.objects.order_by("pk").values()),
        "relabels": list(GoldRelabel.objects.order_by("pk").values()),
    }


@pytest.fixture
def acting_user(request, make_user):
    role = request.param
    if role == "anonymous":
        return None
    if role == "staff":
        return make_user("sam", is_staff=True)
    return request.getfixturevalue(role)


@pytest.mark.parametrize("acting_user", ROLES, indirect=True, ids=ROLES)
@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_role_matrix(page, acting_user, policy, owner, client):
    token = ApiToken.objects.create(
        user=acting_user or owner, name="laptop", prefix="phk_abcdef", token_hash=f"hash-of-{page.name}"
    )
    path = page.path.format(token=token.pk)
    if acting_user is not None:
        client.force_login(acting_user)
    before = _state()
    data = page.data(_draft(policy)) if page.data else None

    response = client.post(path, data) if page.method == "post" else client.get(path)

    if acting_user is None:
        expected, redirect = 302, None
        assert urlsplit(response.url).path == "/login/"
        assert parse_qs(urlsplit(response.url).query)["next"] == [path]
    elif not roles.user_roles(acting_user):
        expected, redirect = 403, None
    elif roles.has_role(acting_user, roles.POLICY_OWNER):
        expected, redirect = page.owner, page.owner_redirect
    else:
        expected, redirect = page.reader, page.reader_redirect
    assert response.status_code == expected
    if redirect:
        assert response.url == redirect
    if expected in (302, 403, 404) and not redirect:
        assert _state() == before, "a refused request changed something"
    else:
        _effect_checks(page, policy, token)
    if expected == 403:
        assert b"needs the role" in response.content


def test_readers_see_the_published_content_but_not_the_draft_in_the_history(policy, annotator, client_for):
    response = client_for(annotator).get(f"/policies/{SLUG}/")

    assert response.status_code == 200
    assert [v.number for v in response.context["versions"]] == [1]
    assert f"/policies/{SLUG}/v2/" not in response.content.decode()
    assert b"Edit draft" not in response.content and b"Retire" not in response.content


def test_readers_do_not_see_a_policy_that_has_only_a_draft(owner, annotator, client_for, client):
    client_for(owner).post("/policies/new/", {"slug": "secret", "name": "Secret", "task_description": "Shh."})
    client.logout()

    listing = client_for(annotator).get("/")
    detail = client_for(annotator).get("/policies/secret/")

    assert b"Secret" not in listing.content
    assert detail.status_code == 404


@pytest.mark.parametrize("role", ["annotator", "engineer", "nobody"])
def test_a_refused_draft_save_leaves_the_draft_as_it_was(role, policy, request, client_for):
    user = request.getfixturevalue(role)
    draft = _draft(policy)
    client = client_for(user)

    save = client.post(f"/policies/{SLUG}/draft/", editor_post_data(draft, body="Vandalised.", rules=[]))
    publish = client.post(f"/policies/{SLUG}/draft/publish/", {"revision": str(draft.revision)})

    assert (save.status_code, publish.status_code) == (403, 403)
    after = _draft(policy)
    assert after.status == PolicyVersion.Status.DRAFT
    assert (after.body, after.rules, after.revision) == (draft.body, draft.rules, draft.revision)


@pytest.mark.parametrize("role", ["owner", "annotator"])
def test_admin_is_for_staff_only(db, role, request, client_for):
    response = client_for(request.getfixturevalue(role)).get("/admin/")

    assert response.status_code == 302
    assert urlsplit(response.url).path == "/admin/login/"


def test_anonymous_users_are_sent_to_the_admin_login(client):
    response = client.get("/admin/")

    assert response.status_code == 302
    assert urlsplit(response.url).path == "/admin/login/"


def test_staff_can_open_the_admin(make_user, client_for):
    staff = make_user("sam", is_staff=True, is_superuser=True)

    response = client_for(staff).get("/admin/")

    assert response.status_code == 200
    assert b"Policy versions" in response.content


def test_admin_cannot_change_a_published_version(policy, make_user, client_for):
    staff = make_user("sam", is_staff=True, is_superuser=True)
    v1 = policy.versions.get(number=1)
    url = f"/admin/policyhub/policyversion/{v1.pk}/change/"
    client = client_for(staff)

    page = client.get(url)
    post = client.post(url, {"body": "Changed in the admin.", "status": "published"})

    assert page.status_code == 200
    assert b'name="body"' not in page.content  # shown read-only
    assert post.status_code == 403
    v1.refresh_from_db()
    assert v1.body == "# Match policy\n\nJudge from the profile only.\n"


# --- the gold set, scores on it and draft previews ---------------------------------------------------------------
@dataclass(frozen=True)
class GoldPage:
    name: str
    method: str
    path: str  # formatted with the ids of gold_world
    engineer: int  # status for ML engineers (annotators always get 403 here)
    owner: int  # status for policy owners and staff
    data: dict | None = None


GOLD_PAGES = [
    GoldPage("gold set", "get", "/policies/match/gold/", 200, 200),
    GoldPage("gold remove", "post", "/policies/match/gold/{gold}/remove/", 403, 302, {"reason": "matrix"}),
    GoldPage("gold mark", "post", "/gold/items/{approved}/mark/", 403, 302, {}),
    GoldPage("run reviewed items", "get", "/runs/{run}/gold/", 403, 200),
    GoldPage("run mark all", "post", "/runs/{run}/gold/mark-all/", 403, 302, {}),
    GoldPage("scores", "get", "/policies/match/gold/score/", 200, 200),
    GoldPage(
        "score start", "post", "/policies/match/gold/score/", 403, 302, {"version": "{version}", "config": "{config}"}
    ),
    GoldPage("score of a run", "get", "/policies/match/gold/score/{score}/", 200, 200),
    GoldPage("preview panel", "get", "/policies/match/draft/gold-preview/", 403, 200),
    GoldPage("preview start", "post", "/policies/match/draft/gold-preview/start/", 403, 302, {"config": "{config}"}),
    GoldPage("preview", "get", "/policies/match/draft/gold-preview/{preview}/", 403, 200),
]


@pytest.fixture
def gold_world(policy, owner, make_user):
    """One human-approved item already gold, another not yet; a gold score run and a draft preview."""
    import io

    from labeling.models import Candidate, TeacherConfig
    from labeling.services import (
        draft_preview_start,
        gold_mark,
        gold_score_start,
        import_file,
        labeling_run_create,
        review_claim_next,
        review_submit,
    )

    for kind, text in [
        ("members", "member_id,headline\ng1,One\ng2,Two\n"),
        ("jobs", "job_id,title,description\ngj,Job,Work\n"),
        ("pairs", "member_id,job_id\ng1,gj\ng2,gj\n"),
    ]:
        assert import_file(kind=kind, stream=io.BytesIO(text.encode()), name=f"{kind}.csv").ok
    config = TeacherConfig.objects.create(name="matrix", provider="heuristic")
    published = policy.versions.get(number=1)
    run = labeling_run_create(version=published, config=config, selection={"all": True})
    Candidate.objects.filter(run=run).update(
        status="labeled", label="strong_match", routing="needs_review", review_state="pending", reviews_needed=1
    )
    reviewer = make_user("rita", roles.ANNOTATOR)
    while (item := review_claim_next(user=reviewer, run_id=run.pk)) is not None:
        review_submit(user=reviewer, candidate_id=item.pk, label="no_match")
    first, second = Candidate.objects.filter(run=run).order_by("id")
    gold = gold_mark(user=owner, candidate_id=first.pk).gold
    score = gold_score_start(user=owner, version=published, config=config)
    preview = draft_preview_start(user=owner, draft=policy.versions.get(number=2), config=config)
    return {
        "gold": gold.pk, "approved": second.pk, "run": run.pk, "score": score.pk, "preview": preview.pk,
        "version": published.pk, "config": config.pk,
    }  # fmt: skip


def _gold_state():
    from labeling.models import DraftPreview, GoldLabel, GoldLabelEvent, LabelingRun

    return {
        "gold": list(GoldLabel.objects.order_by("pk").values_list("pk", "label")),
        "events": GoldLabelEvent.objects.count(),
        "runs": LabelingRun.objects.count(),
        "previews": DraftPreview.objects.count(),
    }


@pytest.mark.parametrize("acting_user", ROLES, indirect=True, ids=ROLES)
@pytest.mark.parametrize("page", GOLD_PAGES, ids=[page.name for page in GOLD_PAGES])
def test_gold_role_matrix(page, acting_user, gold_world, client):
    path = page.path.format(**gold_world)
    data = {key: value.format(**gold_world) for key, value in (page.data or {}).items()}
    if acting_user is not None:
        client.force_login(acting_user)
    before = _gold_state()

    response = client.post(path, data) if page.method == "post" else client.get(path)

    if acting_user is None:
        assert response.status_code == 302 and urlsplit(response.url).path == "/login/"
    elif roles.has_role(acting_user, roles.POLICY_OWNER):
        assert response.status_code == page.owner
    elif roles.has_role(acting_user, roles.ML_ENGINEER):
        assert response.status_code == page.engineer
    else:  # no role, or annotators only
        assert response.status_code == 403
    is_owner = acting_user is not None and roles.has_role(acting_user, roles.POLICY_OWNER)
    if page.method == "post":
        if is_owner:
            assert _gold_state() != before, "an allowed write did nothing"
        else:
            assert _gold_state() == before, "a refused request changed something"
    if response.status_code == 403:
        assert b"needs the role" in response.content
