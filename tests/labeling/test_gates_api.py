"""Quality gates over the API: GET/PUT /api/policies/{slug}/gates, GET …/draft/gates, publishing through the gates
(POST …/draft/publish with ``override_reason``) and GET …/versions/{n}/gates, each role checked."""

import json

import pytest

from labeling.models import GateRecord, QualityGates
from policyhub import services as policy_services

from .gates_helpers import edit_draft, set_gates

GATES = "/api/policies/match/gates"
DRAFT_GATES = "/api/policies/match/draft/gates"
PUBLISH = "/api/policies/match/draft/publish"


def auth(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {policy_services.api_token_create(user=user, name='t').raw}"}


def send(client, method, url, headers, payload=None):
    body = json.dumps(payload) if payload is not None else ""
    return getattr(client, method)(url, data=body, content_type="application/json", **headers)


def test_readers_read_the_gates_and_owners_set_them(client, policy, owner, annotator, engineer):
    none = client.get(GATES, **auth(annotator)).json()
    assert none["configured"] is False and none["min_gold_accuracy"] is None

    put = send(client, "put", GATES, auth(owner), {"min_gold_accuracy": 0.85, "max_flip_rate": None})
    assert put.status_code == 200
    body = put.json()
    assert (body["configured"], body["min_gold_accuracy"], body["max_flip_rate"]) == (True, 0.85, None)
    assert body["max_rule_accuracy_drop"] == 0.05 and body["updated_by"] == "olivia"  # unsent: the default

    partial = send(client, "put", GATES, auth(owner), {"require_red_team_run": True}).json()
    assert (partial["min_gold_accuracy"], partial["require_red_team_run"]) == (0.85, True)  # others kept
    for reader in (annotator, engineer):
        assert client.get(GATES, **auth(reader)).json()["min_gold_accuracy"] == 0.85


@pytest.mark.parametrize("role", ["annotator", "engineer", "nobody"])
def test_only_owners_write_gates_and_read_the_draft_check(client, policy, owner, request, role):
    user = request.getfixturevalue(role)
    if role == "nobody":  # no role, so no token: the browser session
        client.force_login(user)
        headers = {}
    else:
        headers = auth(user)

    put = send(client, "put", GATES, headers, {"min_gold_accuracy": 0.1})
    check = client.get(DRAFT_GATES, **headers)

    assert put.status_code == check.status_code == 403
    assert not QualityGates.objects.exists()


def test_anonymous_callers_get_401(client, policy):
    assert client.get(GATES).status_code == 401
    assert send(client, "put", GATES, {}, {"min_gold_accuracy": 0.5}).status_code == 401
    assert client.get("/api/policies/match/versions/1/gates").status_code == 401


@pytest.mark.parametrize("value", [1.2, -0.5, "high"])
def test_out_of_range_thresholds_are_422_and_change_nothing(client, policy, owner, value):
    response = send(client, "put", GATES, auth(owner), {"max_flip_rate": value})
    assert response.status_code == 422 and "max_flip_rate" in json.dumps(response.json()["detail"])
    assert not QualityGates.objects.exists()


def test_a_blocked_publish_is_400_with_every_gate_and_an_override_publishes(
    client, previewed, gated_draft, policy, owner, annotator
):
    preview = previewed(bad=True)
    set_gates(policy, owner, min_gold_accuracy=0.8)
    headers = auth(owner)

    check = client.get(DRAFT_GATES, **headers).json()
    blocked = send(client, "post", PUBLISH, headers, {"revision": gated_draft.revision})
    empty = send(client, "post", PUBLISH, headers, {"revision": gated_draft.revision, "override_reason": " "})

    assert (check["passed"], check["preview"], check["results"][0]["status"]) == (False, preview.pk, "failed")
    assert blocked.status_code == empty.status_code == 400
    assert blocked.json()["detail"].startswith("Cannot publish v2: 1 quality gate blocks it — Gold accuracy")
    gate = blocked.json()["gates"]["results"][0]
    assert (gate["key"], gate["figure"], gate["threshold"], gate["blocking"]) == ("min_gold_accuracy", 0.25, 0.8, True)
    assert "an override needs a reason" in empty.json()["detail"]
    assert policy.versions.get(number=2).status == "draft"

    done = send(
        client, "post", PUBLISH, headers, {"revision": gated_draft.revision, "override_reason": "Known gold gap."}
    )
    assert done.status_code == 200 and done.json()["status"] == "published"

    record = client.get("/api/policies/match/versions/2/gates", **auth(annotator))
    assert record.status_code == 200
    body = record.json()
    assert (body["passed"], body["overridden"], body["overridden_by"], body["override_reason"]) == (
        False, True, "olivia", "Known gold gap.",
    )  # fmt: skip
    assert body["preview"] == preview.pk and body["figures"]["gold"]["accuracy"] == 0.25
    assert body["thresholds"]["min_gold_accuracy"] == 0.8 and body["results"][0]["status"] == "failed"
    assert GateRecord.objects.get(version__number=2).override_reason == "Known gold gap."


def test_a_stale_preview_is_400_asking_for_a_preview(client, previewed, gated_draft, policy, owner):
    previewed()
    set_gates(policy, owner, min_gold_accuracy=0.5)
    draft = edit_draft(policy, owner, "# Match policy\n\nChanged since.\n")

    response = send(client, "post", PUBLISH, auth(owner), {"revision": draft.revision, "override_reason": "go"})

    assert response.status_code == 400
    assert "The draft changed since its latest preview" in response.json()["detail"]
    assert response.json()["gates"]["needs_preview"] is True


def test_readers_see_the_record_of_versions_they_may_read_only(client, policy, owner, annotator, engineer):
    for user in (annotator, engineer, owner):
        v1 = client.get("/api/policies/match/versions/1/gates", **auth(user))
        assert v1.status_code == 200 and v1.json()["gates_configured"] is False and v1.json()["results"] == []
    assert client.get("/api/policies/match/versions/2/gates", **auth(annotator)).status_code == 404  # a draft
    draft = client.get("/api/policies/match/versions/2/gates", **auth(owner))
    assert draft.status_code == 404 and draft.json()["detail"] == "v2 of match has no gate record: it is a draft."
    assert client.get("/api/policies/nosuch/versions/1/gates", **auth(owner)).status_code == 404
