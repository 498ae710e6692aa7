import pytest

from policyhub import services
from policyhub.models import ContentValidationError


def test_publishing_a_draft_with_one_label_reports_where_the_problem_is(owner):
    policy = services.policy_create(
        slug="thin", name="Thin", task_description="t", owner=owner,
        labels=[{"key": "yes", "definition": "d"}], rules=[{"text": "r"}],
    )  # fmt: skip
    draft = policy.versions.get()
    with pytest.raises(ContentValidationError) as error:
        services.policy_version_publish(version=draft, user=owner)
    assert [(e.section, e.message) for e in error.value.content_errors] == [
        ("labels", "A published version needs at least two labels.")
    ]
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_api_publish_of_an_incomplete_draft_lists_the_errors(owner, client):
    policy = services.policy_create(slug="thin", name="Thin", task_description="t", owner=owner)
    token = services.api_token_create(user=owner, name="t").raw
    response = client.post(
        f"/api/policies/{policy.slug}/draft/publish", {"revision": 1}, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )  # fmt: skip
    assert response.status_code == 400
    assert {e["section"] for e in response.json()["errors"]} == {"labels", "rules"}


def test_a_new_draft_copies_the_last_version_even_when_every_version_is_retired(policy, owner):
    v1 = policy.versions.get(number=1)
    draft = policy.versions.get(number=2)
    draft.delete()
    services.policy_version_retire(version=v1, user=owner)
    new_draft = services.policy_version_draft_start(policy=policy, user=owner)
    assert new_draft.based_on == v1 and new_draft.rules == v1.rules and new_draft.number == 2
