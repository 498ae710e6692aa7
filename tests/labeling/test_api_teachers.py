"""/api/teachers: ML engineers list, create and update teacher configs through the page's form and service: the
endpoint allow-list and the configured key names hold, no key's value is ever taken or returned, every base URL
or key change is audited, bad input names its field and saves nothing, a retried create returns the same config."""

import pytest

from labeling.models import TeacherConfig, TeacherConfigChange
from tests.api_roles import CALLERS, bearer, caller_headers, expect_refused

NEW = {"name": "gpt-mini", "model": "gpt-4o-mini", "samples_per_pair": 3, "price_input_per_mtok": "0.15"}


def post(client, body, headers, **extra):
    return client.post("/api/teachers", body, content_type="application/json", **headers, **extra)


def patch(client, config, body, headers):
    return client.patch(f"/api/teachers/{config.pk}", body, content_type="application/json", **headers)


def test_an_engineer_adds_a_config_lists_it_and_moves_it_to_another_allowed_endpoint(client, engineer):
    auth = bearer(engineer)

    created = post(client, NEW, auth)

    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["provider"], body["api_key_name"], body["price_input_per_mtok"]) == (
        "gpt-mini", "openai", "openai", "0.1500"
    )  # fmt: skip
    assert body["batch_price_factor"] == "0.500" and body["created_by"] == "emma"
    assert [c["name"] for c in client.get("/api/teachers", **auth).json()] == ["gpt-mini"]
    assert client.get("/api/teachers/keys", **auth).json() == ["openai"]

    moved = patch(client, TeacherConfig.objects.get(), {"base_url": "http://127.0.0.1:9999/v1", "temperature": 0.2},
                  auth)  # fmt: skip

    assert moved.status_code == 200, moved.content
    assert (moved.json()["base_url"], moved.json()["temperature"], moved.json()["model"]) == (
        "http://127.0.0.1:9999/v1", 0.2, "gpt-4o-mini"
    )  # fmt: skip
    changes = client.get(f"/api/teachers/{body['id']}/changes", **auth).json()
    assert [(c["field"], c["old_value"], c["new_value"], c["changed_by"]) for c in changes] == [
        ("base_url", "", "http://127.0.0.1:9999/v1", "emma"),
        ("api_key_name", "", "openai", "emma"),  # set on creation
    ]
    assert TeacherConfigChange.objects.filter(field="base_url", new_value="http://127.0.0.1:9999/v1").count() == 1


def test_the_same_idempotency_key_returns_the_same_config(client, engineer):
    auth = {**bearer(engineer), "HTTP_IDEMPOTENCY_KEY": "create-gpt-mini"}

    first = post(client, NEW, auth)
    again = post(client, {**NEW, "model": "something-else"}, auth)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert TeacherConfig.objects.count() == 1 and TeacherConfigChange.objects.count() == 1


def test_a_retry_that_loses_the_race_to_the_first_request_returns_its_config(client, engineer, monkeypatch):
    """The first request commits between the retry's look-up of its key and its save: the retry answers the
    first config, not a 400 for the name it took."""
    from labeling import selectors
    from labeling.api import teachers

    auth = {**bearer(engineer), "HTTP_IDEMPOTENCY_KEY": "race"}
    first = post(client, NEW, auth).json()
    look_up, calls = selectors.teacher_config_for_key, []

    def missing_the_first_time(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else look_up(**kwargs)

    monkeypatch.setattr(teachers.selectors, "teacher_config_for_key", missing_the_first_time)

    again = post(client, NEW, auth)

    assert again.status_code == 200 and again.json() == first
    assert TeacherConfig.objects.count() == 1 and len(calls) == 2  # missed, then found after the form refused


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**NEW, "base_url": "http://10.0.0.5:8000/v1"}, "base_url", "may not be sent to"),
        ({**NEW, "base_url": "https://evil.example.com/v1"}, "base_url", "openai"),
        ({**NEW, "api_key_name": "sk-live-abc123"}, "api_key_name", "never the key itself"),
        ({**NEW, "samples_per_pair": 50}, "samples_per_pair", "less than or equal to 20"),
        ({**NEW, "provider": "anthropic"}, "provider", "anthropic"),
        ({**NEW, "name": "has spaces"}, "name", ""),
    ],
)
def test_a_refused_field_is_named_and_nothing_is_saved(client, engineer, body, field, message):
    response = post(client, body, bearer(engineer))

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"] and f"{field}: " in response.json()["detail"]
    assert message in response.json()["detail"]
    assert "sk-live-abc123" not in response.content.decode()
    assert not TeacherConfig.objects.exists() and not TeacherConfigChange.objects.exists()


def test_a_key_value_is_never_taken(client, engineer):
    response = post(client, {**NEW, "api_key": "sk-live-abc123"}, bearer(engineer))

    assert response.status_code == 422 and "api_key" in response.content.decode()
    assert "sk-live-abc123" not in response.content.decode()
    assert not TeacherConfig.objects.exists()


def test_a_bad_update_changes_nothing(client, engineer, make_config):
    config = make_config("fake")

    response = patch(client, config, {"base_url": "http://169.254.169.254/latest", "model": "other"}, bearer(engineer))

    assert response.status_code == 400 and "base_url: " in response.json()["detail"], response.content
    config.refresh_from_db()
    assert (config.base_url, config.model) == ("", "fake-teacher") and not TeacherConfigChange.objects.exists()
    assert patch(client, config, {"model": "x"}, bearer(engineer)).status_code == 200
    assert client.patch("/api/teachers/999999", {}, content_type="application/json", **bearer(engineer)).status_code \
        == 404  # fmt: skip


@pytest.mark.parametrize("caller", CALLERS)
def test_role_matrix(client, caller, annotator, engineer, owner, make_config):
    config = make_config("fake")
    headers = caller_headers(caller, annotator=annotator, engineer=engineer, owner=owner, expired_as="ml_engineer")

    answers = [
        client.get("/api/teachers", **headers),
        post(client, NEW, headers),
        patch(client, config, {"model": "changed"}, headers),
        client.get(f"/api/teachers/{config.pk}/changes", **headers),
    ]

    if caller == "ml_engineer":
        assert [a.status_code for a in answers] == [200, 201, 200, 200]
    else:
        for answer in answers:
            expect_refused(answer, caller, {"ml_engineer"})
        assert TeacherConfig.objects.get().model == "fake-teacher" and TeacherConfig.objects.count() == 1
