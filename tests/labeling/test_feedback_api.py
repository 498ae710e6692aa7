"""Policy feedback over the JSON API with API tokens: create (annotators, policy owners; Idempotency-Key), list per
policy, read one, resolve, dismiss and reopen (policy owners), and the role matrix of every endpoint."""

import pytest
from django.utils.timezone import now

from labeling.models import PolicyFeedback
from labeling.services import review_claim_next
from policyhub import services


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {services.api_token_create(user=user, name='t').raw}"}


@pytest.fixture
def held(review_items, annotator):
    review_items(2)
    return review_claim_next(user=annotator)


@pytest.fixture
def api(client):
    def call(method: str, path: str, user=None, body=None, **headers):
        if user is not None and not user.groups.exists():  # no role, so no API token: the browser session
            client.force_login(user)
        auth = bearer(user) if user is not None and user.groups.exists() else {}
        if body is None:
            return getattr(client, method)(path, **auth, **headers)
        return getattr(client, method)(path, body, content_type="application/json", **auth, **headers)

    return call


def create_body(item, **change):
    return {"candidate_id": item.pk, "kind": "unclear_rule", "rule_ids": ["R2"], "note": "One level: mid→senior?",
            **change}  # fmt: skip


def test_an_annotator_creates_feedback_and_a_retry_with_the_same_key_returns_it(api, held, annotator):
    first = api("post", "/api/feedback", annotator, create_body(held), HTTP_IDEMPOTENCY_KEY="flag-1")
    again = api("post", "/api/feedback", annotator, create_body(held, note="other"), HTTP_IDEMPOTENCY_KEY="flag-1")
    assert (first.status_code, again.status_code) == (201, 200)
    body = first.json()
    assert again.json()["id"] == body["id"] and PolicyFeedback.objects.count() == 1
    assert {k: body[k] for k in ("policy", "version", "candidate_id", "run_id", "kind", "rule_ids", "status",
                                 "created_by", "resolved_in_version")} == {
        "policy": "match", "version": 1, "candidate_id": held.pk, "run_id": held.run_id, "kind": "unclear_rule",
        "rule_ids": ["R2"], "status": "open", "created_by": "arjun", "resolved_in_version": None,
    }  # fmt: skip
    assert body["member_id"] == held.pair.member.external_id
    assert api("post", "/api/feedback", annotator, create_body(held)).status_code == 201  # no key: a second flag


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"rule_ids": ["R4"]}, 400, "R4 is not a rule of match v1"),
        ({"kind": "rules_conflict"}, 400, "Name at least two rules that conflict"),
        ({"note": " "}, 400, "Say what the problem is in the note"),
        ({"candidate_id": 10**9}, 404, "There is no item"),
    ],
)
def test_bad_feedback_is_a_4xx_that_says_why(api, held, annotator, change, status, detail):
    response = api("post", "/api/feedback", annotator, create_body(held, **change))
    assert response.status_code == status and detail in response.json()["detail"]
    assert not PolicyFeedback.objects.exists()


def test_an_unknown_kind_is_refused_by_the_schema(api, held, annotator):
    assert api("post", "/api/feedback", annotator, create_body(held, kind="typo")).status_code == 422


@pytest.fixture
def flagged(api, held, annotator):
    return api("post", "/api/feedback", annotator, create_body(held)).json()["id"]


def test_a_policy_owner_resolves_in_a_later_version_and_the_list_filters_by_it(api, flagged, owner):
    early = api("post", f"/api/feedback/{flagged}/resolve", owner, {"version": 1})
    assert early.status_code == 400 and "later version" in early.json()["detail"]
    response = api("post", f"/api/feedback/{flagged}/resolve", owner, {"version": 2, "note": "R2 reworded"})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["resolved_in_version"], response.json()["closed_by"]) == (
        "resolved", 2, "olivia")  # fmt: skip
    twice = api("post", f"/api/feedback/{flagged}/dismiss", owner, {"reason": "dup"})
    assert twice.status_code == 400 and "already resolved by olivia" in twice.json()["detail"]
    listed = api("get", "/api/policies/match/feedback?resolved_in=2", owner).json()
    assert [row["id"] for row in listed] == [flagged]
    assert api("get", "/api/policies/match/feedback?status=open", owner).json() == []


def test_a_policy_owner_dismisses_with_a_reason(api, flagged, owner):
    empty = api("post", f"/api/feedback/{flagged}/dismiss", owner, {"reason": ""})
    assert empty.status_code == 400 and "Say why" in empty.json()["detail"]
    response = api("post", f"/api/feedback/{flagged}/dismiss", owner, {"reason": "R2 is clear: see example 2."})
    assert response.status_code == 200 and response.json()["dismiss_reason"] == "R2 is clear: see example 2."
    assert [row["id"] for row in api("get", "/api/policies/match/feedback?status=dismissed", owner).json()] == [flagged]


# --- the role matrix: annotators create and read their own; policy owners create, read all and act; ML engineers
# read all; anyone else nothing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "create", "listed", "read", "act"),
    [
        ("annotator", 201, 2, 200, 403),  # their flag from the fixture and the one made here
        ("second", 404, 0, 404, 403),  # another annotator: not their item, not their flag
        ("owner", 201, 2, 200, 200),  # owners may flag any item of a labeling run
        ("engineer", 403, 1, 200, 403),  # read-only
        ("nobody", 403, 403, 403, 403),  # logged in (a session), no role
        ("anonymous", 401, 401, 401, 401),
    ],
)  # fmt: skip
def test_the_role_matrix(api, held, flagged, request, make_user, who, create, listed, read, act):
    from policyhub import roles

    users = {"anonymous": None, "second": make_user("bea", roles.ANNOTATOR)}
    user = users[who] if who in users else request.getfixturevalue(who)

    assert api("post", "/api/feedback", user, create_body(held, note=f"by {who}")).status_code == create
    listing = api("get", "/api/policies/match/feedback", user)
    if listed in (401, 403):
        assert listing.status_code == listed
    else:
        assert listing.status_code == 200 and len(listing.json()) == listed
    assert api("get", f"/api/feedback/{flagged}", user).status_code == read
    assert api("post", f"/api/feedback/{flagged}/resolve", user, {"version": 2}).status_code == act
    assert PolicyFeedback.objects.get(pk=flagged).status == ("resolved" if act == 200 else "open")
    if act != 200:  # closed by an owner, so that only the role refuses the reopen
        PolicyFeedback.objects.filter(pk=flagged).update(status="dismissed", dismiss_reason="dup", closed_at=now())
    assert api("post", f"/api/feedback/{flagged}/reopen", user, {"reason": "Not fixed."}).status_code == act
    assert PolicyFeedback.objects.get(pk=flagged).status == ("open" if act == 200 else "dismissed")


def test_an_annotator_lists_only_their_own_feedback(api, held, flagged, owner, annotator):
    api("post", "/api/feedback", owner, create_body(held, kind="not_covered", rule_ids=[], note="owner's"))
    assert [row["id"] for row in api("get", "/api/policies/match/feedback", annotator).json()] == [flagged]
    assert len(api("get", "/api/policies/match/feedback", owner).json()) == 2
