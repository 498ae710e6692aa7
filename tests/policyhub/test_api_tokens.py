"""Per-user API tokens: stored only as a sha256, shown once, revocable, and record their last use."""

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from policyhub import roles, services
from policyhub.models import ApiToken


def _bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


# --- issuing ------------------------------------------------------------------------------------------------
def test_token_is_stored_only_as_its_sha256(annotator):
    issued = services.api_token_create(user=annotator, name="laptop")

    row = ApiToken.objects.get(pk=issued.token.pk)
    assert issued.raw.startswith("phk_")
    assert len(issued.raw) > 40
    assert row.token_hash == hashlib.sha256(issued.raw.encode("utf-8")).hexdigest()
    assert row.prefix == issued.raw[:10]
    assert row.name == "laptop"
    assert row.user == annotator
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM policyhub_apitoken WHERE id = %s", [row.pk])
        stored = [str(value) for value in cursor.fetchone()]
    assert not any(issued.raw in value for value in stored)
    assert not any(issued.raw[10:] in value for value in stored)


def test_every_token_is_different(annotator):
    first = services.api_token_create(user=annotator, name="one")
    second = services.api_token_create(user=annotator, name="one")

    assert first.raw != second.raw
    assert first.token.token_hash != second.token.token_hash


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_token_needs_a_sensible_name(annotator, name):
    with pytest.raises(ValidationError):
        services.api_token_create(user=annotator, name=name)

    assert not ApiToken.objects.exists()


def test_users_without_a_role_cannot_have_tokens(nobody):
    with pytest.raises(PermissionDenied):
        services.api_token_create(user=nobody, name="laptop")

    assert not ApiToken.objects.exists()


# --- authenticating -----------------------------------------------------------------------------------------
def test_authenticate_finds_the_owner_of_an_active_token(annotator, engineer):
    issued = services.api_token_create(user=annotator, name="laptop")
    services.api_token_create(user=engineer, name="laptop")

    assert services.api_token_authenticate(raw=issued.raw) == annotator
    assert services.api_token_authenticate(raw=issued.raw + "x") is None
    assert services.api_token_authenticate(raw=issued.raw[4:]) is None
    assert services.api_token_authenticate(raw="") is None


def test_token_works_against_the_api(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline")

    response = client.get("/api/me", **_bearer(issued.raw))

    assert response.status_code == 200
    assert response.json()["username"] == "emma"


def test_last_used_at_is_set_when_the_token_is_used(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline")
    assert issued.token.last_used_at is None

    before = timezone.now()
    client.get("/api/policies", **_bearer(issued.raw))

    used = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    assert used is not None
    assert before <= used <= timezone.now()


def test_last_used_at_moves_on_after_a_minute(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline")
    long_ago = timezone.now() - timedelta(hours=2)
    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=long_ago)

    client.get("/api/me", **_bearer(issued.raw))

    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at > long_ago + timedelta(hours=1)


def test_a_failed_request_does_not_touch_other_tokens(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline")

    client.get("/api/me", HTTP_AUTHORIZATION="Bearer phk_wrong")

    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at is None


# --- revoking -----------------------------------------------------------------------------------------------
def test_revoked_token_stops_working(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline")
    assert client.get("/api/me", **_bearer(issued.raw)).status_code == 200

    services.api_token_revoke(token=issued.token, user=engineer)

    assert client.get("/api/me", **_bearer(issued.raw)).status_code == 401
    assert services.api_token_authenticate(raw=issued.raw) is None
    row = ApiToken.objects.get(pk=issued.token.pk)
    assert row.revoked_at is not None
    assert not row.is_active


def test_revoking_one_token_leaves_the_others_working(client, policy, engineer):
    laptop = services.api_token_create(user=engineer, name="laptop")
    pipeline = services.api_token_create(user=engineer, name="pipeline")

    services.api_token_revoke(token=laptop.token, user=engineer)

    assert client.get("/api/me", **_bearer(laptop.raw)).status_code == 401
    assert client.get("/api/me", **_bearer(pipeline.raw)).status_code == 200


def test_revoking_twice_keeps_the_first_revocation_time(engineer):
    issued = services.api_token_create(user=engineer, name="pipeline")
    first = services.api_token_revoke(token=issued.token, user=engineer).revoked_at

    again = services.api_token_revoke(token=ApiToken.objects.get(pk=issued.token.pk), user=engineer)

    assert again.revoked_at == first


def test_users_cannot_revoke_someone_elses_token(engineer, annotator):
    issued = services.api_token_create(user=engineer, name="pipeline")

    with pytest.raises(PermissionDenied):
        services.api_token_revoke(token=issued.token, user=annotator)

    assert ApiToken.objects.get(pk=issued.token.pk).is_active


def test_staff_can_revoke_any_token(engineer, make_user):
    admin = make_user("sam", roles.POLICY_OWNER, is_staff=True)
    issued = services.api_token_create(user=engineer, name="pipeline")

    services.api_token_revoke(token=issued.token, user=admin)

    assert not ApiToken.objects.get(pk=issued.token.pk).is_active
