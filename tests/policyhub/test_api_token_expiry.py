"""API tokens expire after the lifetime chosen at creation (90 days unless chosen otherwise, or never); an expired
token gets a 401 that says so, and the token page shows each token's expiry next to its last use."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from policyhub import services
from policyhub.models import ApiToken

URL = "/account/tokens/"


def _bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.mark.parametrize("days", [30, 90, 365])
def test_a_token_expires_after_the_chosen_number_of_days(engineer, days):
    before = timezone.now()

    issued = services.api_token_create(user=engineer, name="pipeline", lifetime_days=days)

    expires = ApiToken.objects.get(pk=issued.token.pk).expires_at
    assert before + timedelta(days=days) <= expires <= timezone.now() + timedelta(days=days)


def test_tokens_expire_after_90_days_unless_chosen_otherwise(engineer):
    issued = services.api_token_create(user=engineer, name="pipeline")

    assert issued.token.expires_at - issued.token.created_at == pytest.approx(timedelta(days=90), abs=timedelta(1))


def test_a_token_can_be_made_to_never_expire(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline", lifetime_days=None)
    ApiToken.objects.filter(pk=issued.token.pk).update(created_at=timezone.now() - timedelta(days=3000))

    assert ApiToken.objects.get(pk=issued.token.pk).expires_at is None
    assert client.get("/api/me", **_bearer(issued.raw)).status_code == 200


@pytest.mark.parametrize("days", [0, 7, 10_000, -1, "90"])
def test_only_the_offered_lifetimes_are_accepted(engineer, days):
    with pytest.raises(ValidationError, match="A token expires after 30 days, 90 days, 365 days, never"):
        services.api_token_create(user=engineer, name="pipeline", lifetime_days=days)

    assert not ApiToken.objects.exists()


def test_an_expired_token_is_refused_with_a_401_that_says_it_expired(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline", lifetime_days=30)
    assert client.get("/api/me", **_bearer(issued.raw)).status_code == 200
    used = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    expired_at = timezone.now() - timedelta(seconds=1)
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=expired_at, last_used_at=used - timedelta(hours=1))

    response = client.get("/api/me", **_bearer(issued.raw))

    assert response.status_code == 401
    detail = response.json()["detail"]
    assert f"This API token ({issued.token.prefix}…) expired on {expired_at:%Y-%m-%d %H:%M} UTC" in detail
    assert "create a new one" in detail
    assert client.get("/api/policies", **_bearer(issued.raw)).status_code == 401
    # a refused request is not a use
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == used - timedelta(hours=1)


def test_a_token_works_until_its_expiry(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline", lifetime_days=30)
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() + timedelta(minutes=1))

    assert client.get("/api/me", **_bearer(issued.raw)).status_code == 200


def test_unknown_and_revoked_tokens_still_get_the_plain_401(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline")
    services.api_token_revoke(token=issued.token, user=engineer)
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(days=1))

    for raw in (issued.raw, "phk_unknown"):
        response = client.get("/api/me", **_bearer(raw))
        assert response.status_code == 401
        assert "expired" not in response.json()["detail"]


def test_last_use_is_written_at_most_once_a_minute(client, policy, engineer):
    issued = services.api_token_create(user=engineer, name="pipeline")
    client.get("/api/me", **_bearer(issued.raw))
    first = ApiToken.objects.get(pk=issued.token.pk).last_used_at

    client.get("/api/me", **_bearer(issued.raw))
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == first

    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=first - timedelta(seconds=61))
    client.get("/api/me", **_bearer(issued.raw))
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at > first


# --- the token page -----------------------------------------------------------------------------------------
def test_the_page_offers_the_lifetimes_with_90_days_chosen(annotator, client_for):
    html = client_for(annotator).get(URL).content.decode()

    assert '<select id="token-expires" name="expires">' in html
    assert '<option value="30">30 days</option>' in html
    assert '<option value="90" selected>90 days</option>' in html
    assert '<option value="365">365 days</option>' in html
    assert '<option value="never">never</option>' in html


@pytest.mark.parametrize(("choice", "days"), [("30", 30), ("365", 365), ("never", None)])
def test_the_chosen_lifetime_is_the_tokens(annotator, client_for, choice, days):
    response = client_for(annotator).post(URL, {"name": "laptop", "expires": choice})

    assert response.status_code == 200
    token = ApiToken.objects.get(user=annotator)
    if days is None:
        assert token.expires_at is None
    else:
        assert token.expires_at - token.created_at == pytest.approx(timedelta(days=days), abs=timedelta(seconds=5))


@pytest.mark.parametrize(
    ("choice", "message"),
    [("7", "A token expires after 30 days, 90 days, 365 days, never; not 7."),
     ("forever", "Choose when the token expires; &#x27;forever&#x27; is not one of the choices.")],
)  # fmt: skip
def test_a_lifetime_not_offered_is_refused_with_a_message(annotator, client_for, choice, message):
    response = client_for(annotator).post(URL, {"name": "laptop", "expires": choice})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_page_shows_expiry_and_last_use_of_each_token(annotator, client_for):
    used = services.api_token_create(user=annotator, name="used laptop", lifetime_days=30)
    old = services.api_token_create(user=annotator, name="old script", lifetime_days=30)
    services.api_token_create(user=annotator, name="forever box", lifetime_days=None)
    last_use = timezone.now() - timedelta(hours=3)
    ApiToken.objects.filter(pk=used.token.pk).update(last_used_at=last_use)
    ApiToken.objects.filter(pk=old.token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    used.token.refresh_from_db()
    old.token.refresh_from_db()

    html = client_for(annotator).get(URL).content.decode()

    rows = {name: html.split(name, 1)[1].split("</tr>", 1)[0] for name in ("used laptop", "old script", "forever box")}
    assert f"{timezone.localtime(last_use):%Y-%m-%d %H:%M}" in rows["used laptop"]
    assert f"{timezone.localtime(used.token.expires_at):%Y-%m-%d %H:%M}" in rows["used laptop"]
    assert ">active<" in rows["used laptop"]
    assert f"{timezone.localtime(old.token.expires_at):%Y-%m-%d %H:%M}" in rows["old script"]
    assert ">expired<" in rows["old script"]
    assert rows["forever box"].count(">never<") == 2  # never used, never expires
    assert ">active<" in rows["forever box"]


def test_tokens_made_before_expiry_existed_never_expire_and_say_so(annotator, client_for, client, policy):
    issued = services.api_token_create(user=annotator, name="legacy")
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=None)  # what the migration leaves them with

    html = client_for(annotator).get(URL).content.decode()

    assert html.split("legacy", 1)[1].split("</tr>", 1)[0].count(">never<") == 2
    assert client.get("/api/me", **_bearer(issued.raw)).status_code == 200


# --- the command --------------------------------------------------------------------------------------------
def test_the_command_sets_and_lists_the_expiry(engineer):
    out = StringIO()
    call_command("api_token", "create", "--user", "emma", "--name", "ci", "--expires-in-days", "never", stdout=out)
    call_command("api_token", "create", "--user", "emma", "--name", "laptop", stdout=out)
    listing = StringIO()
    call_command("api_token", "list", "--user", "emma", stdout=listing)

    ci, laptop = ApiToken.objects.get(name="ci"), ApiToken.objects.get(name="laptop")
    assert ci.expires_at is None
    assert laptop.expires_at - laptop.created_at == pytest.approx(timedelta(days=90), abs=timedelta(seconds=5))
    lines = {line.split("\t")[2]: line for line in listing.getvalue().splitlines()}
    assert "expires never\tactive" in lines["ci"]
    assert f"expires {laptop.expires_at:%Y-%m-%d %H:%M}\tactive" in lines["laptop"]
