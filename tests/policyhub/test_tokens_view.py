"""The API tokens page: create (shown once), name required, revoke only your own."""

from policyhub import services
from policyhub.models import ApiToken

URL = "/account/tokens/"


def test_created_token_is_shown_once_and_works(annotator, client_for):
    client = client_for(annotator)

    response = client.post(URL, {"name": "laptop"})

    assert response.status_code == 200
    raw = response.context["issued"].raw
    assert raw.startswith("phk_")
    assert raw in response.content.decode()
    assert "it is shown only once" in response.content.decode()
    token = ApiToken.objects.get(user=annotator)
    assert token.name == "laptop"
    assert token.token_hash == services.hash_token(raw)
    assert raw not in (token.prefix, token.token_hash)  # only a hash is stored
    assert services.api_token_authenticate(raw=raw) == annotator

    again = client.get(URL)

    assert again.status_code == 200
    assert raw not in again.content.decode()
    assert "laptop" in again.content.decode()
    assert f"{token.prefix}…" in again.content.decode()


def test_empty_name_is_refused_with_a_message(engineer, client_for):
    response = client_for(engineer).post(URL, {"name": "   "})

    assert response.status_code == 400
    assert "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_token_list_shows_only_your_own_tokens(annotator, engineer, client_for):
    services.api_token_create(user=engineer, name="emma's pipeline")
    services.api_token_create(user=annotator, name="arjun's laptop")

    html = client_for(annotator).get(URL).content.decode()

    assert "arjun&#x27;s laptop" in html
    assert "emma&#x27;s pipeline" not in html


def test_revoking_your_own_token_disables_it(annotator, client_for):
    issued = services.api_token_create(user=annotator, name="laptop")
    client = client_for(annotator)

    response = client.post(f"{URL}{issued.token.pk}/revoke/", follow=True)

    assert response.redirect_chain == [(URL, 302)]
    assert "Revoked the token laptop." in response.content.decode()
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    assert services.api_token_authenticate(raw=issued.raw) is None
    assert f'action="{URL}{issued.token.pk}/revoke/"' not in response.content.decode()


def test_revoking_another_users_token_is_not_found_and_changes_nothing(annotator, owner, client_for):
    theirs = services.api_token_create(user=owner, name="owner laptop")

    response = client_for(annotator).post(f"{URL}{theirs.token.pk}/revoke/")

    assert response.status_code == 404
    theirs.token.refresh_from_db()
    assert theirs.token.revoked_at is None
    assert services.api_token_authenticate(raw=theirs.raw) == owner


def test_revoke_needs_a_post(annotator, client_for):
    issued = services.api_token_create(user=annotator, name="laptop")

    response = client_for(annotator).get(f"{URL}{issued.token.pk}/revoke/")

    assert response.status_code == 405
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def test_the_page_showing_a_new_token_is_not_cached(annotator, client_for):
    response = client_for(annotator).post(URL, {"name": "laptop"})

    assert "no-store" in response["Cache-Control"]
