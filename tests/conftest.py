"""Shared fixtures: users per role, a policy with a published v1 and a draft v2, clients per role."""

import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import override_settings

from policyhub import roles, services


@pytest.fixture(autouse=True, scope="session")
def _require_postgresql(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.exit("The test suite runs on PostgreSQL: use bin/test or set DATABASE_URL.", returncode=2)


#: The teacher settings the tests run with: the fake OpenAI server listens on 127.0.0.1, so the default ``openai``
#: key may be sent there and base URLs may lead there (both refused by the default settings).
TEACHER_TEST_ENV = {
    "TEACHER_API_KEYS": "openai=OPENAI_API_KEY@https://api.openai.com/v1|127.0.0.1",
    "TEACHER_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
}


@pytest.fixture(autouse=True, scope="session")
def _teachers_may_reach_the_fake_server():
    """Django's settings are read before any conftest, so the test process gets them overridden and the workers
    the tests start (which copy this environment) read them from the environment."""
    from policyhub.settings import env_list, env_teacher_keys

    os.environ.update(TEACHER_TEST_ENV)
    with override_settings(
        TEACHER_API_KEYS=env_teacher_keys("TEACHER_API_KEYS", {}),
        TEACHER_ALLOWED_PRIVATE_HOSTS=env_list("TEACHER_ALLOWED_PRIVATE_HOSTS", []),
    ):
        yield


@pytest.fixture
def make_user(db):
    def make(username: str, *role_names: str, **extra):
        user = get_user_model().objects.create_user(
            username=username, password="pw-" + username, email=f"{username}@example.com", **extra
        )
        for role in role_names:
            user.groups.add(Group.objects.get_or_create(name=role)[0])  # a transactional test may have flushed it
        return user

    return make


@pytest.fixture
def owner(make_user):
    return make_user("olivia", roles.POLICY_OWNER)


@pytest.fixture
def annotator(make_user):
    return make_user("arjun", roles.ANNOTATOR)


@pytest.fixture
def engineer(make_user):
    return make_user("emma", roles.ML_ENGINEER)


@pytest.fixture
def nobody(make_user):
    """Logged in, but holds no role."""
    return make_user("nina")


LABELS = [
    {"key": "strong_match", "title": "Strong match", "definition": "Meets the must-haves."},
    {"key": "partial_match", "title": "Partial match", "definition": "Some gaps."},
    {"key": "no_match", "title": "No match", "definition": "A must-have is missing."},
]
RULES = [
    {"id": "R1", "text": "Required skills appear in the member's skills."},
    {"id": "R2", "text": "Seniority differs by at most one level."},
    {"id": "R3", "text": "Location is compatible or the job is remote."},
]


@pytest.fixture
def policy(owner):
    """A policy with a published v1 and an open draft v2 (a copy of v1)."""
    created = services.policy_create(
        slug="match",
        name="Member–job match",
        task_description="Is the job a good match for the member?",
        owner=owner,
        body="# Match policy\n\nJudge from the profile only.\n",
        labels=LABELS,
        rules=RULES,
    )
    services.policy_version_publish(version=created.versions.get(number=1), user=owner)
    services.policy_version_draft_start(policy=created, user=owner)
    return created


@pytest.fixture
def client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture(scope="session")
def labelstudio_server():
    """A real Label Studio server from .venv-labelstudio, shared by the session (each test uses its own projects)."""
    from tests.labelstudio_server import LabelStudioMissing, LabelStudioServer

    try:
        server = LabelStudioServer()
    except LabelStudioMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    with server:
        yield server


@pytest.fixture
def labelstudio(labelstudio_server, settings):
    """PolicyHub pointed at the test Label Studio (as LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY would)."""
    settings.LABEL_STUDIO_URL = labelstudio_server.url
    settings.LABEL_STUDIO_API_KEY = labelstudio_server.token
    return labelstudio_server


@pytest.fixture
def labelstudio_link(labelstudio):
    """``link(user, email=None)``: sign the person up in Label Studio (as ``email``, by default the user's) and link
    the PolicyHub user to that account with its own token, as they would on their Label Studio page."""
    from labeling.services import labelstudio_account_link

    def link(user, email: str | None = None):
        return labelstudio_account_link(user=user, token=labelstudio.annotator_token(email or user.email))

    return link
