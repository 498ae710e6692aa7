"""``manage.py api_token create|list|revoke``."""

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from policyhub.models import ApiToken


def _run(*args) -> str:
    out = StringIO()
    call_command("api_token", *args, stdout=out)
    return out.getvalue()


def _create(username: str, name: str) -> str:
    return _run("create", "--user", username, "--name", name).strip()


def test_create_prints_the_token_once_and_stores_its_hash(engineer):
    raw = _create("emma", "laptop")

    token = ApiToken.objects.get(user=engineer)
    assert raw.startswith("phk_")
    assert token.name == "laptop"
    assert token.token_hash == hashlib.sha256(raw.encode("utf-8")).hexdigest()
    assert token.prefix == raw[:10]


def test_created_token_works_until_revoked(client, policy, engineer):
    raw = _create("emma", "laptop")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    me = client.get("/api/me", **headers)
    assert me.status_code == 200
    assert me.json() == {"username": "emma", "roles": ["ml_engineer"]}

    token = ApiToken.objects.get(user=engineer)
    output = _run("revoke", str(token.pk))

    assert "Revoked" in output and "laptop" in output
    assert client.get("/api/me", **headers).status_code == 401


def test_revoke_by_prefix(client, policy, engineer):
    raw = _create("emma", "laptop")

    _run("revoke", raw[:10])

    assert not ApiToken.objects.get(user=engineer).is_active
    assert client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_list_shows_a_users_tokens_without_the_secret(engineer, annotator):
    laptop = _create("emma", "laptop")
    pipeline = _create("emma", "training pipeline")
    _create("arjun", "arjun's own")
    _run("revoke", laptop[:10])

    output = _run("list", "--user", "emma")

    lines = output.strip().splitlines()
    assert len(lines) == 2
    by_name = {line.split("\t")[2]: line for line in lines}
    assert set(by_name) == {"laptop", "training pipeline"}
    assert by_name["training pipeline"].endswith("\tactive")
    assert "\trevoked " in by_name["laptop"]
    assert pipeline[:10] in by_name["training pipeline"]
    assert laptop not in output and pipeline not in output
    assert "arjun" not in output


def test_list_of_a_user_without_tokens_is_empty(engineer):
    assert _run("list", "--user", "emma") == ""


def test_create_for_an_unknown_user_fails(db):
    with pytest.raises(CommandError, match="No user 'ghost'"):
        _create("ghost", "laptop")

    assert not ApiToken.objects.exists()


def test_create_for_a_user_without_a_role_fails(nobody):
    with pytest.raises(CommandError, match="role"):
        _create("nina", "laptop")

    assert not ApiToken.objects.exists()


def test_create_with_a_blank_name_fails(engineer):
    with pytest.raises(CommandError, match="name"):
        _create("emma", "  ")

    assert not ApiToken.objects.exists()


def test_revoke_of_an_unknown_token_fails(engineer):
    raw = _create("emma", "laptop")

    with pytest.raises(CommandError, match="No single token"):
        _run("revoke", "phk_nope00")
    with pytest.raises(CommandError, match="No single token"):
        _run("revoke", "999999")

    assert ApiToken.objects.get(prefix=raw[:10]).is_active
