"""POST/PUT /api/policies/{slug}/draft and …/draft/publish: only owners write; stale saves are 409."""

import json

import pytest
from django.test import Client

from policyhub import roles, services
from policyhub.models import ImmutableVersionError, PolicyVersion

DRAFT_URL = "/api/policies/match/draft"
PUBLISH_URL = "/api/policies/match/draft/publish"


def _auth(user) -> dict:
    raw = services.api_token_create(user=user, name="tests").raw
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _draft(policy) -> PolicyVersion:
    return policy.versions.get(status=PolicyVersion.Status.DRAFT)


def _payload(version: PolicyVersion, **changes) -> dict:
    return {
        "revision": version.revision,
        "body": version.body,
        "labels": version.labels,
        "rules": version.rules,
        **changes,
    }


def _put(client, headers, payload):
    return client.put(DRAFT_URL, data=json.dumps(payload), content_type="application/json", **headers)


def _post(client, url, headers, payload=None):
    data = json.dumps(payload) if payload is not None else ""
    return client.post(url, data=data, content_type="application/json", **headers)


def _snapshot(policy) -> list[tuple]:
    return list(policy.versions.order_by("number").values_list("number", "status", "revision", "content_hash", "body"))


# --- readers may not write ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reader", ["annotator", "engineer"])
def test_readers_get_403_on_draft_writes_and_publish(client, policy, request, reader):
    headers = _auth(request.getfixturevalue(reader))
    draft = _draft(policy)
    before = _snapshot(policy)

    put = _put(client, headers, _payload(draft, body="Reader rewrote it."))
    start = _post(client, DRAFT_URL, headers)
    publish = _post(client, PUBLISH_URL, headers, {"revision": draft.revision})

    assert (put.status_code, start.status_code, publish.status_code) == (403, 403, 403)
    assert _snapshot(policy) == before


def test_user_without_a_role_gets_403_on_writes(client, policy, nobody):
    client.force_login(nobody)
    draft = _draft(policy)
    before = _snapshot(policy)

    assert _put(client, {}, _payload(draft, body="x")).status_code == 403
    assert _post(client, DRAFT_URL, {}).status_code == 403
    assert _post(client, PUBLISH_URL, {}, {"revision": draft.revision}).status_code == 403
    assert _snapshot(policy) == before


def test_anonymous_writes_are_401(client, policy):
    draft = _draft(policy)
    before = _snapshot(policy)

    assert _put(client, {}, _payload(draft, body="x")).status_code == 401
    assert _post(client, PUBLISH_URL, {}, {"revision": draft.revision}).status_code == 401
    assert _snapshot(policy) == before


# --- starting a draft ---------------------------------------------------------------------------------------
def test_owner_start_returns_the_open_draft(client, policy, owner):
    draft = _draft(policy)

    response = _post(client, DRAFT_URL, _auth(owner))

    assert response.status_code == 200
    assert response.json()["number"] == 2
    assert response.json()["status"] == "draft"
    assert policy.versions.count() == 2
    assert _draft(policy).pk == draft.pk


def test_owner_starts_a_new_draft_from_the_latest_published(client, policy, owner):
    services.policy_version_publish(version=_draft(policy), user=owner)
    v2 = policy.versions.get(number=2)

    response = _post(client, DRAFT_URL, _auth(owner))

    assert response.status_code == 200
    data = response.json()
    assert (data["number"], data["status"], data["revision"]) == (3, "draft", 1)
    assert data["content_hash"] == v2.content_hash
    assert _draft(policy).based_on_id == v2.pk


# --- saving a draft -----------------------------------------------------------------------------------------
def test_owner_saves_the_draft_and_the_revision_bumps(client, policy, owner):
    draft = _draft(policy)
    rules = [*draft.rules, {"id": "", "text": "Salary fits.", "positive_examples": ["Range overlaps"]}]

    response = _put(client, _auth(owner), _payload(draft, body="New body.", rules=rules))

    assert response.status_code == 200
    data = response.json()
    assert data["revision"] == 2
    assert data["body"] == "New body."
    assert [rule["id"] for rule in data["rules"]] == ["R1", "R2", "R3", "R4"]
    assert data["rules"][3]["positive_examples"] == ["Range overlaps"]
    stored = _draft(policy)
    assert (stored.revision, stored.body, stored.rule_ids) == (2, "New body.", ["R1", "R2", "R3", "R4"])
    assert data["content_hash"] == stored.content_hash != draft.content_hash


def test_stale_revision_is_409_with_the_current_revision(client, policy, owner):
    headers = _auth(owner)
    draft = _draft(policy)
    assert _put(client, headers, _payload(draft, body="First save.")).status_code == 200

    response = _put(client, headers, _payload(draft, body="Second save from the old revision."))

    assert response.status_code == 409
    assert response.json()["current_revision"] == 2
    stored = _draft(policy)
    assert (stored.revision, stored.body) == (2, "First save.")


def test_invalid_content_is_400_with_errors_by_section_index_and_field(client, policy, owner):
    draft = _draft(policy)
    labels = [*draft.labels, {"key": "no_match", "title": "Twice", "definition": ""}]
    rules = [*draft.rules, {"id": "R1", "text": "Another R1."}]
    before = _snapshot(policy)

    response = _put(client, _auth(owner), _payload(draft, labels=labels, rules=rules))

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {(e["section"], e["index"], e["field"]) for e in errors} == {
        ("labels", 3, "key"),
        ("labels", 3, "definition"),
        ("rules", 3, "id"),
    }
    assert all(e["message"] for e in errors)
    assert _snapshot(policy) == before


def test_reusing_a_removed_rule_id_is_400(client, policy, owner):
    headers = _auth(owner)
    draft = _draft(policy)
    assert _put(client, headers, _payload(draft, rules=draft.rules[:2])).status_code == 200
    assert _post(client, PUBLISH_URL, headers, {"revision": 2}).status_code == 200
    v3 = _post(client, DRAFT_URL, headers).json()

    response = _put(
        client,
        headers,
        {**v3, "rules": [*v3["rules"], {"id": "R3", "text": "Different rule, old ID."}]},
    )

    assert response.status_code == 400
    assert [(e["section"], e["index"], e["field"]) for e in response.json()["errors"]] == [("rules", 2, "id")]


def test_a_payload_without_a_revision_is_refused(client, policy, owner):
    draft = _draft(policy)
    payload = _payload(draft, body="No revision given.")
    del payload["revision"]
    before = _snapshot(policy)

    response = _put(client, _auth(owner), payload)

    assert 400 <= response.status_code < 500
    assert _snapshot(policy) == before


def test_saving_when_there_is_no_draft_is_404(client, policy, owner):
    headers = _auth(owner)
    draft = _draft(policy)
    services.policy_version_publish(version=draft, user=owner)

    response = _put(client, headers, _payload(draft, body="Too late."))

    assert response.status_code == 404
    assert policy.versions.get(number=2).body == draft.body


# --- publishing ---------------------------------------------------------------------------------------------
def test_owner_publishes_and_the_version_becomes_immutable(client, policy, owner, annotator):
    headers = _auth(owner)
    saved = _put(client, headers, _payload(_draft(policy), body="Version two.")).json()

    response = _post(client, PUBLISH_URL, headers, {"revision": saved["revision"]})

    assert response.status_code == 200
    data = response.json()
    assert (data["number"], data["status"]) == (2, "published")
    assert data["published_at"] is not None
    assert data["content_hash"] == saved["content_hash"]
    # readers now see it
    read = client.get("/api/policies/match/versions/2", **_auth(annotator))
    assert read.status_code == 200 and read.json()["body"] == "Version two."
    # no draft is left to edit, and the published row refuses changes
    assert _put(client, headers, {**saved, "body": "Edited after publishing."}).status_code == 404
    assert _post(client, PUBLISH_URL, headers, {"revision": saved["revision"]}).status_code == 404
    v2 = policy.versions.get(number=2)
    v2.body = "Edited after publishing."
    with pytest.raises(ImmutableVersionError):
        v2.save()
    assert policy.versions.get(number=2).body == "Version two."


def test_publish_with_a_stale_revision_is_409(client, policy, owner):
    headers = _auth(owner)
    draft = _draft(policy)
    _put(client, headers, _payload(draft, body="Saved by someone else."))

    response = _post(client, PUBLISH_URL, headers, {"revision": draft.revision})

    assert response.status_code == 409
    assert response.json()["current_revision"] == 2
    assert _draft(policy).status == PolicyVersion.Status.DRAFT


def test_publishing_a_draft_with_one_label_is_400(client, policy, owner):
    headers = _auth(owner)
    draft = _draft(policy)
    saved = _put(client, headers, _payload(draft, labels=draft.labels[:1])).json()

    response = _post(client, PUBLISH_URL, headers, {"revision": saved["revision"]})

    assert response.status_code == 400
    assert "two labels" in response.content.decode()
    assert _draft(policy).pk == draft.pk


def test_a_second_owner_can_publish(client, policy, make_user):
    colleague = make_user("carla", roles.POLICY_OWNER)

    response = _post(client, PUBLISH_URL, _auth(colleague), {"revision": 1})

    assert response.status_code == 200
    assert policy.versions.get(number=2).published_by == colleague


# --- CSRF ---------------------------------------------------------------------------------------------------
def test_session_writes_need_a_csrf_token_but_bearer_writes_do_not(policy, owner):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)

    forged = _post(browser, PUBLISH_URL, {}, {"revision": 1})

    assert forged.status_code == 403
    assert _draft(policy).status == PolicyVersion.Status.DRAFT

    script = Client(enforce_csrf_checks=True)
    response = _post(script, PUBLISH_URL, _auth(owner), {"revision": 1})

    assert response.status_code == 200
    assert policy.versions.get(number=2).status == PolicyVersion.Status.PUBLISHED
