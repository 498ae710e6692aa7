"""POST /api/policies: a policy owner creates a policy with its first draft through the page's form and service;
a taken slug or content that does not validate names the field and saves nothing; a retried create with the same
Idempotency-Key returns the same policy; only policy owners may create."""

import pytest

from policyhub.models import Policy, PolicyVersion
from tests.api_roles import CALLERS, bearer, caller_headers, expect_refused

NEW = {
    "slug": "seniority-fit",
    "name": "Seniority fit",
    "task_description": "Does the member's seniority fit the job?",
    "body": "# Seniority\n\nOne level apart is fine.\n",
    "labels": [{"key": "fits", "definition": "At most one level apart."}, {"key": "no_fit", "definition": "Not."}],
    "rules": [{"text": "Compare the stated seniority levels."}],
}


def post(client, body, headers):
    return client.post("/api/policies", body, content_type="application/json", **headers)


def test_an_owner_creates_a_policy_with_its_first_draft_and_edits_it(client, owner):
    auth = bearer(owner)

    created = post(client, NEW, auth)

    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["slug"], body["owner"], body["latest_published"]) == ("seniority-fit", "olivia", None)
    assert [(v["number"], v["status"]) for v in body["versions"]] == [(1, "draft")]
    draft = client.get("/api/policies/seniority-fit/versions/1", **auth).json()
    assert [label["key"] for label in draft["labels"]] == ["fits", "no_fit"]
    assert draft["rules"][0]["id"] == "R1" and draft["body"] == NEW["body"]
    published = client.post("/api/policies/seniority-fit/draft/publish", {"revision": draft["revision"]},
                            content_type="application/json", **auth)  # fmt: skip
    assert published.status_code == 200 and published.json()["status"] == "published"


def test_the_same_idempotency_key_returns_the_same_policy(client, owner):
    auth = {**bearer(owner), "HTTP_IDEMPOTENCY_KEY": "create-seniority"}

    first = post(client, NEW, auth)
    again = post(client, NEW, auth)  # the slug is taken now: without the key this is a 400

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Policy.objects.count() == 1 and PolicyVersion.objects.count() == 1
    assert post(client, NEW, bearer(owner)).status_code == 400


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "has spaces"}, "slug"),
        ({"slug": "match"}, "slug"),  # taken by the fixture's policy
        ({"name": ""}, "name"),
        ({"task_description": ""}, "task_description"),
    ],
)
def test_a_refused_field_is_named_and_nothing_is_saved(client, policy, owner, change, field):
    response = post(client, {**NEW, **change}, bearer(owner))

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"] and response.json()["detail"].startswith(f"{field}: ")
    assert not Policy.objects.filter(slug="seniority-fit").exists() and Policy.objects.count() == 1


def test_invalid_content_names_the_label_and_saves_nothing(client, owner):
    labels = [{"key": "fits", "definition": "x"}, {"key": "fits", "definition": "twice"}]

    response = post(client, {**NEW, "labels": labels}, bearer(owner))
    missing = post(client, {key: value for key, value in NEW.items() if key != "name"}, bearer(owner))

    assert response.status_code == 400, response.content
    assert [(e["section"], e["index"], e["message"]) for e in response.json()["errors"]] == [
        ("labels", 1, "The key 'fits' is used twice.")
    ]
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"][-1] == "name"
    assert not Policy.objects.exists()


@pytest.mark.parametrize("caller", CALLERS)
def test_role_matrix(client, caller, annotator, engineer, owner):
    headers = caller_headers(caller, annotator=annotator, engineer=engineer, owner=owner)

    response = post(client, NEW, headers)

    if caller == "policy_owner":
        assert response.status_code == 201
    else:
        expect_refused(response, caller, {"policy_owner"})
        assert not Policy.objects.exists()
