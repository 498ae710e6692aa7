"""``manage.py seed_demo``: one user per role (two annotators) and the member–job policy (published v1, draft v2);
idempotent."""

import re
import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.http import HttpRequest

from policyhub import roles
from policyhub.models import Policy, PolicyVersion

USERS = {
    "owner": roles.POLICY_OWNER,
    "annotator": roles.ANNOTATOR,
    "engineer": roles.ML_ENGINEER,
    "annotator2": roles.ANNOTATOR,  # a second opinion, so the demo's reviews can disagree
}
CREDENTIAL_LINE = re.compile(r"^\s+(\w+)\s+(\w+)\s+(\S+)$")


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def seed() -> tuple[str, dict[str, tuple[str, str]]]:
    """Run the command; return its output and the printed credentials {username: (role, password)}."""
    out = StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    credentials = {}
    for line in text.splitlines():
        match = CREDENTIAL_LINE.match(line)
        if match:
            credentials[match.group(1)] = (match.group(2), match.group(3))
    return text, credentials


def _counts():
    return (get_user_model().objects.count(), Policy.objects.count(), PolicyVersion.objects.count())


@pytest.mark.django_db
def test_seed_creates_one_user_per_role(var_dir):
    _, credentials = seed()

    assert {username: role for username, (role, _) in credentials.items()} == USERS
    for username, role in USERS.items():
        user = get_user_model().objects.get(username=username)
        assert roles.user_roles(user) == {role}
        assert not user.is_staff


@pytest.mark.django_db
def test_seed_creates_the_policy_with_a_published_v1_and_a_draft_v2(var_dir):
    output, _ = seed()

    assert "Demo policy 'member-job-match' created." in output
    policy = Policy.objects.get(slug="member-job-match")
    v1, v2 = policy.versions.get(number=1), policy.versions.get(number=2)
    assert v1.status == PolicyVersion.Status.PUBLISHED
    assert v2.status == PolicyVersion.Status.DRAFT
    assert policy.versions.count() == 2
    assert v1.label_keys == ["strong_match", "partial_match", "no_match"]
    assert len(v1.rules) >= 6
    added = set(v2.rule_ids) - set(v1.rule_ids)
    assert added == {f"R{len(v1.rules) + 1}"}
    assert set(v1.rule_ids) <= set(v2.rule_ids)
    assert v2.body != v1.body


@pytest.mark.django_db
def test_seeded_draft_shows_its_added_rule_on_the_compare_page(var_dir, client):
    _, credentials = seed()
    assert client.login(request=HttpRequest(), username="owner", password=credentials["owner"][1])

    response = client.get("/policies/member-job-match/compare/?from=1&to=2")

    assert response.status_code == 200
    assert 'class="added" data-rule="R7"' in response.content.decode()


@pytest.mark.django_db
def test_running_the_seed_twice_creates_nothing_new_and_prints_the_same_passwords(var_dir):
    _, first = seed()
    counts = _counts()
    hashes = dict(PolicyVersion.objects.values_list("number", "content_hash"))

    output, second = seed()

    assert "already present" in output
    assert second == first
    assert _counts() == counts
    assert dict(PolicyVersion.objects.values_list("number", "content_hash")) == hashes


@pytest.mark.django_db
def test_printed_passwords_log_in_through_the_login_page(var_dir, client):
    _, credentials = seed()

    for username, (_, password) in credentials.items():
        response = client.post("/login/", {"username": username, "password": password})
        assert response.status_code == 302, username
        assert response.url == "/"
        assert client.get("/").status_code == 200
        client.logout()
    assert client.post("/login/", {"username": "owner", "password": "wrong"}).status_code == 200  # form again


@pytest.mark.django_db
def test_credentials_are_kept_private_under_var(var_dir):
    _, credentials = seed()

    path = var_dir / "demo-credentials.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert sorted(lines) == sorted(f"{u}\t{r}\t{p}" for u, (r, p) in credentials.items())


@pytest.mark.django_db
def test_seed_gives_a_new_password_when_the_credentials_file_was_lost(var_dir, client):
    _, first = seed()
    (var_dir / "demo-credentials.txt").unlink()

    _, second = seed()

    assert second["owner"][1] != first["owner"][1]
    assert client.login(request=HttpRequest(), username="owner", password=second["owner"][1])
    assert _counts()[0] == len(USERS)
