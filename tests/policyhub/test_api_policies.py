"""GET /api/policies…: token auth, role checks and what each role may read."""

import pytest

from policyhub import roles, services
from policyhub.models import PolicyVersion, PromptSnapshot
from policyhub.prompts import build_system_prompt

READ_URLS = [
    "/api/me",
    "/api/policies",
    "/api/policies/match",
    "/api/policies/match/versions/1",
    "/api/policies/match/versions/1/prompt",
    "/api/policies/match/diff?old=1&new=2",
]


def _auth(user) -> dict:
    raw = services.api_token_create(user=user, name="tests").raw
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


# --- authentication -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", READ_URLS)
def test_no_token_is_401(client, policy, url):
    response = client.get(url)

    assert response.status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "Bearer phk_not-a-real-token",
        "Bearer not-even-the-right-prefix",
        "Bearer ",
        "Token phk_whatever",
        "Basic b2xpdmlhOnB3LW9saXZpYQ==",
    ],
)
def test_bad_token_is_401(client, policy, header):
    response = client.get("/api/policies", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert "slug" not in response.content.decode()


def test_token_with_a_changed_character_is_401(client, policy, owner):
    raw = services.api_token_create(user=owner, name="tests").raw
    tampered = raw[:-1] + ("A" if raw[-1] != "A" else "B")

    response = client.get("/api/policies", HTTP_AUTHORIZATION=f"Bearer {tampered}")

    assert response.status_code == 401


def test_revoked_token_is_401(client, policy, annotator):
    issued = services.api_token_create(user=annotator, name="tests")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issued.raw}"}
    assert client.get("/api/policies", **headers).status_code == 200

    services.api_token_revoke(token=issued.token, user=annotator)

    assert client.get("/api/policies", **headers).status_code == 401


def test_token_of_a_deactivated_user_is_401(client, policy, annotator):
    headers = _auth(annotator)
    annotator.is_active = False
    annotator.save()

    assert client.get("/api/policies", **headers).status_code == 401


def test_me_reports_the_token_owner_and_roles(client, policy, owner):
    response = client.get("/api/me", **_auth(owner))

    assert response.status_code == 200
    assert response.json() == {"username": "olivia", "roles": ["policy_owner"]}


def test_staff_hold_every_role(client, policy, make_user):
    admin = make_user("sam", is_staff=True)

    response = client.get("/api/me", **_auth(admin))

    assert response.json()["roles"] == sorted(roles.ALL_ROLES)


# --- roles --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [u for u in READ_URLS if u != "/api/me"])
def test_user_without_a_role_gets_403(client, policy, nobody, url):
    client.force_login(nobody)  # session auth; a user without a role cannot get a token

    response = client.get(url)

    assert response.status_code == 403
    assert "needs the role" in response.json()["detail"]


def test_token_of_a_user_who_lost_the_role_gets_403(client, policy, make_user):
    former = make_user("fred", roles.ANNOTATOR)
    headers = _auth(former)
    former.groups.clear()

    response = client.get("/api/policies", **headers)

    assert response.status_code == 403


@pytest.mark.parametrize("reader", ["annotator", "engineer"])
def test_readers_list_policies_with_published_versions_only(client, policy, request, reader):
    response = client.get("/api/policies", **_auth(request.getfixturevalue(reader)))

    assert response.status_code == 200
    [item] = response.json()
    assert item["slug"] == "match"
    assert item["name"] == "Member–job match"
    assert item["owner"] == "olivia"
    assert item["latest_published"] == 1
    assert [(v["number"], v["status"]) for v in item["versions"]] == [(1, "published")]


def test_owner_lists_drafts_too(client, policy, owner):
    response = client.get("/api/policies", **_auth(owner))

    [item] = response.json()
    assert [(v["number"], v["status"]) for v in item["versions"]] == [(2, "draft"), (1, "published")]
    assert item["latest_published"] == 1


def test_readers_do_not_see_a_policy_that_was_never_published(client, policy, owner, annotator):
    services.policy_create(slug="secret", name="Secret", task_description="?", owner=owner)
    headers = _auth(annotator)

    listed = client.get("/api/policies", **headers).json()

    assert [item["slug"] for item in listed] == ["match"]
    assert client.get("/api/policies/secret", **headers).status_code == 404
    assert client.get("/api/policies/secret", **_auth(owner)).status_code == 200


@pytest.mark.parametrize("reader", ["annotator", "engineer"])
def test_readers_read_a_published_version(client, policy, request, reader):
    v1 = policy.versions.get(number=1)

    response = client.get("/api/policies/match/versions/1", **_auth(request.getfixturevalue(reader)))

    assert response.status_code == 200
    data = response.json()
    assert data["policy"] == "match"
    assert data["number"] == 1
    assert data["status"] == "published"
    assert data["body"] == v1.body
    assert data["content_hash"] == v1.content_hash
    assert [label["key"] for label in data["labels"]] == ["strong_match", "partial_match", "no_match"]
    assert [rule["id"] for rule in data["rules"]] == ["R1", "R2", "R3"]
    assert data["published_at"] is not None
    assert data["author"] == "olivia"


@pytest.mark.parametrize("reader", ["annotator", "engineer"])
@pytest.mark.parametrize("suffix", ["", "/prompt"])
def test_readers_get_404_for_the_draft_version(client, policy, request, reader, suffix):
    response = client.get(f"/api/policies/match/versions/2{suffix}", **_auth(request.getfixturevalue(reader)))

    assert response.status_code == 404
    assert "Judge from the profile" not in response.content.decode()


def test_owner_reads_the_draft_version(client, policy, owner):
    response = client.get("/api/policies/match/versions/2", **_auth(owner))

    assert response.status_code == 200
    assert response.json()["status"] == "draft"
    assert response.json()["revision"] == 1


def test_retired_versions_stay_readable(client, policy, owner, engineer):
    services.policy_version_retire(version=policy.versions.get(number=1), user=owner)

    response = client.get("/api/policies/match/versions/1", **_auth(engineer))

    assert response.status_code == 200
    assert response.json()["status"] == "retired"


def test_unknown_policy_and_version_are_404(client, policy, annotator):
    headers = _auth(annotator)

    assert client.get("/api/policies/nope", **headers).status_code == 404
    assert client.get("/api/policies/match/versions/9", **headers).status_code == 404


# --- prompt and diff ----------------------------------------------------------------------------------------
def test_prompt_of_a_version_not_yet_frozen_is_built_live(client, policy, annotator):
    v1 = policy.versions.get(number=1)

    response = client.get("/api/policies/match/versions/1/prompt", **_auth(annotator))

    assert response.status_code == 200
    data = response.json()
    assert data["frozen"] is False
    assert data["system_prompt"] == build_system_prompt(v1)
    assert data["content_hash"] == v1.content_hash


def test_prompt_of_a_published_version_comes_from_its_snapshot(client, policy, annotator):
    v1 = policy.versions.get(number=1)
    services.prompt_snapshot_store(version_id=v1.pk)
    PromptSnapshot.objects.filter(version=v1).update(system_prompt="The prompt as it was frozen.")

    response = client.get("/api/policies/match/versions/1/prompt", **_auth(annotator))

    assert response.json()["frozen"] is True
    assert response.json()["system_prompt"] == "The prompt as it was frozen."


def test_owner_sees_the_draft_prompt_live(client, policy, owner):
    draft = policy.versions.get(status=PolicyVersion.Status.DRAFT)

    response = client.get("/api/policies/match/versions/2/prompt", **_auth(owner))

    assert response.status_code == 200
    assert response.json()["frozen"] is False
    assert response.json()["system_prompt"] == build_system_prompt(draft)


def _publish_v2_with_changes(policy, owner) -> None:
    draft = policy.versions.get(status=PolicyVersion.Status.DRAFT)
    rules = [dict(rule) for rule in draft.rules if rule["id"] != "R3"]
    rules[0]["text"] = "All required skills appear in the member's skills."
    saved = services.policy_version_draft_save(
        version=draft,
        user=owner,
        revision=draft.revision,
        body=draft.body + "Ignore the photo.\n",
        labels=draft.labels,
        rules=[*rules, {"id": "", "text": "Salary fits."}],
    )
    services.policy_version_publish(version=saved, user=owner)


def test_diff_lists_changed_rules_and_body_lines(client, policy, owner, engineer):
    _publish_v2_with_changes(policy, owner)

    response = client.get("/api/policies/match/diff?old=1&new=2", **_auth(engineer))

    assert response.status_code == 200
    data = response.json()
    assert data["body_changed"] is True
    assert [(row["kind"], row["new_text"]) for row in data["body_diff"]] == [("insert", "Ignore the photo.")]
    assert [(c["key"], c["change"], c["changed_fields"]) for c in data["rules"]] == [
        ("R1", "changed", ["text"]),
        ("R4", "added", []),
        ("R3", "removed", []),
    ]
    assert data["labels"] == []


def test_readers_cannot_diff_against_the_draft(client, policy, annotator):
    response = client.get("/api/policies/match/diff?old=1&new=2", **_auth(annotator))

    assert response.status_code == 404
