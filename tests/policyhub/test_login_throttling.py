"""Login throttling (django-axes): five wrong passwords for one username from one address lock that pair out of the
login page and the admin's for 15 minutes, even with the right password; other users and addresses, and a user
who gets it right before the limit, are not affected."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt

WRONG = "not-the-password"


def _log_in(client, username: str, password: str, *, path: str = "/login/", address: str = "127.0.0.1", forwarded=None):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def _fail(client, username: str, times: int, **kwargs) -> None:
    """``times`` wrong passwords, each answered with the form again (and its error)."""
    for _ in range(times):
        response = _log_in(client, username, WRONG, **kwargs)
        assert response.status_code == 200, response.status_code


def _lock(client, username: str, **kwargs) -> None:
    """Five wrong passwords: the fifth is answered with the lock-out page."""
    _fail(client, username, 4, **kwargs)
    assert _log_in(client, username, WRONG, **kwargs).status_code == 429


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
def test_five_wrong_passwords_lock_the_login_even_with_the_right_password(client, owner):
    _lock(client, "olivia")

    response = _log_in(client, "olivia", "pw-olivia")

    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many login attempts" in page
    assert "after 5 wrong passwords" in page and "(0:15:00," in page
    assert not _logged_in(client)
    assert client.get("/").status_code == 302  # still sent to the login page


@pytest.mark.django_db
def test_four_wrong_passwords_then_the_right_one_logs_in_and_starts_the_count_again(client, owner):
    _fail(client, "olivia", 4)
    assert _log_in(client, "olivia", "pw-olivia").status_code == 302
    assert _logged_in(client)
    client.logout()

    _fail(client, "olivia", 4)  # 8 wrong in all, never 5 in a row

    assert _log_in(client, "olivia", "pw-olivia").status_code == 302
    assert _logged_in(client)


@pytest.mark.django_db
def test_the_admin_login_is_locked_the_same_way(client, make_user):
    make_user("sam", is_staff=True, is_superuser=True)
    _lock(client, "sam", path="/admin/login/")

    response = _log_in(client, "sam", "pw-sam", path="/admin/login/")

    assert response.status_code == 429
    assert not _logged_in(client)
    assert _log_in(client, "sam", "pw-sam").status_code == 429  # the same lock on the app's login page


@pytest.mark.django_db
def test_a_lock_holds_one_username_from_one_address_only(client, owner, annotator):
    _lock(client, "olivia")

    assert _log_in(client, "arjun", "pw-arjun").status_code == 302  # another user from the same address
    client.logout()
    assert _log_in(client, "olivia", "pw-olivia", address="10.1.2.3").status_code == 302  # olivia elsewhere


@pytest.mark.django_db
def test_the_lock_lifts_after_the_cool_off(client, owner):
    _lock(client, "olivia")
    assert _log_in(client, "olivia", "pw-olivia").status_code == 429
    attempt = AccessAttempt.objects.get(username="olivia")
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - timedelta(minutes=16))

    assert _log_in(client, "olivia", "pw-olivia").status_code == 302
    assert _logged_in(client)


@pytest.mark.django_db
def test_failed_attempts_never_store_the_password(client, owner):
    _fail(client, "olivia", 2)

    attempt = AccessAttempt.objects.get(username="olivia")
    assert attempt.failures_since_start == 2
    assert WRONG not in attempt.post_data


@pytest.mark.django_db
def test_the_lock_out_page_escapes_the_username(client):
    _fail(client, "<b>eve</b>", 4)

    page = _log_in(client, "<b>eve</b>", WRONG).content.decode()

    assert "&lt;b&gt;eve&lt;/b&gt;" in page
    assert "<b>eve</b>" not in page


# --- behind a proxy -------------------------------------------------------------------------------------------
PROXY = "10.0.0.2"  # every request reaches the app from the TLS-terminating proxy


@pytest.mark.django_db
def test_behind_a_trusted_proxy_clients_are_throttled_by_their_own_address(client, owner, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _lock(client, "olivia", address=PROXY, forwarded="203.0.113.5")

    assert _log_in(client, "olivia", "pw-olivia", address=PROXY, forwarded="203.0.113.5").status_code == 429
    # A client cannot escape by prepending an address: the proxy appends the one it saw, and only that counts.
    assert (
        _log_in(client, "olivia", "pw-olivia", address=PROXY, forwarded="198.51.100.7, 203.0.113.5").status_code == 429
    )
    assert _log_in(client, "olivia", "pw-olivia", address=PROXY, forwarded="198.51.100.7").status_code == 302
    assert _logged_in(client)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}


@pytest.mark.django_db
def test_without_a_trusted_proxy_a_forged_forwarded_for_does_not_escape_the_lock(client, owner, settings):
    assert settings.TRUSTED_PROXY_COUNT == 0  # the default: the header is never trusted
    _lock(client, "olivia", address=PROXY, forwarded="203.0.113.5")

    assert _log_in(client, "olivia", "pw-olivia", address=PROXY, forwarded="198.51.100.7").status_code == 429
    assert not _logged_in(client)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {PROXY}
