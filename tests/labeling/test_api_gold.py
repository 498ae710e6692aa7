"""/api/…/gold: the gold set over the API as on its page — list a page at a time, mark a human-approved item,
replace a different gold label only explicitly, remove with a reason — and a review undo can no longer take back
an item once it is gold; bad input names what is wrong and changes nothing; owners write, ML engineers read."""

import pytest

from labeling.models import GoldLabel, GoldLabelEvent, Review
from tests.api_roles import CALLERS, bearer, caller_headers, expect_refused

from .gold_helpers import approve_all
from .test_gold_set import item, rerun_for_review

LABELS = {"r0": "strong_match", "r1": "partial_match", "r2": "no_match"}


def mark(client, candidate, headers, action="mark"):
    return client.post(f"/api/gold/items/{candidate.pk}/{action}", **headers)


def remove(client, gold_id, reason, headers):
    return client.post(f"/api/policies/match/gold/{gold_id}/remove", {"reason": reason},
                       content_type="application/json", **headers)  # fmt: skip


@pytest.fixture
def approved(review_items, annotator):
    run = review_items(3)
    approve_all(run, annotator, LABELS)
    return run


def test_an_owner_marks_items_gold_and_pages_through_the_set(client, approved, owner, engineer):
    auth = bearer(owner)

    answers = [mark(client, item(approved, m), auth) for m in ("r0", "r1", "r2")]

    assert [a.status_code for a in answers] == [201, 201, 201]
    first = answers[0].json()
    assert first["outcome"] == "added"
    assert (first["gold"]["member_id"], first["gold"]["job_id"], first["gold"]["label"]) == ("r0", "rj", "strong_match")
    assert (first["gold"]["source_item"], first["gold"]["source_run"], first["gold"]["created_by"]) == (
        item(approved, "r0").pk, approved.pk, "olivia"
    )  # fmt: skip
    page = client.get("/api/policies/match/gold", {"limit": 2, "offset": 1}, **bearer(engineer)).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [g["member_id"] for g in page["items"]] == ["r1", "r2"]
    assert page["counts"] == [{"label": "strong_match", "count": 1}, {"label": "partial_match", "count": 1},
                              {"label": "no_match", "count": 1}]  # fmt: skip
    events = client.get("/api/policies/match/gold/events", **auth).json()
    assert [(e["action"], e["label"]) for e in events][-1] == ("added", "strong_match") and len(events) == 3


def test_marking_again_returns_the_same_gold_label_and_changes_nothing(client, approved, owner):
    auth = bearer(owner)
    first = mark(client, item(approved, "r0"), auth)

    again = mark(client, item(approved, "r0"), auth)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "outcome": "unchanged"}
    assert GoldLabel.objects.count() == 1 and GoldLabelEvent.objects.count() == 1


def test_a_different_label_is_a_conflict_until_replaced_explicitly(client, approved, published, annotator, owner):
    auth = bearer(owner)
    mark(client, item(approved, "r0"), auth)
    second = rerun_for_review(published)
    approve_all(second, annotator, {"r0": "no_match", "r1": "partial_match", "r2": "no_match"})
    newer = item(second, "r0")

    conflict = mark(client, newer, auth)

    assert conflict.status_code == 409
    body = conflict.json()
    assert (body["gold"]["label"], body["approved_label"], body["item"]) == ("strong_match", "no_match", newer.pk)
    assert "already gold as strong_match" in body["detail"]
    assert GoldLabel.objects.get().label == "strong_match"

    replaced = mark(client, newer, auth, action="replace")

    assert replaced.status_code == 200 and replaced.json()["outcome"] == "replaced"
    assert (replaced.json()["gold"]["label"], replaced.json()["gold"]["source_item"]) == ("no_match", newer.pk)
    assert GoldLabelEvent.objects.filter(action="replaced", label="strong_match", new_label="no_match").count() == 1


def test_removing_needs_a_reason_and_is_recorded(client, approved, owner):
    auth = bearer(owner)
    gold_id = mark(client, item(approved, "r1"), auth).json()["gold"]["id"]

    blank = remove(client, gold_id, "   ", auth)
    removed = remove(client, gold_id, "The reviewer misread the seniority.", auth)
    twice = remove(client, gold_id, "again", auth)

    assert blank.status_code == 400 and blank.json()["detail"].startswith("reason: Say why")
    assert removed.status_code == 200, removed.content
    assert (removed.json()["action"], removed.json()["label"], removed.json()["user"]) == (
        "removed", "partial_match", "olivia"
    )  # fmt: skip
    assert removed.json()["reason"] == "The reviewer misread the seniority."
    assert twice.status_code == 404 and "removed already" in twice.json()["detail"]
    assert not GoldLabel.objects.exists()


def test_an_item_not_approved_by_humans_is_refused(client, review_items, owner):
    waiting = item(review_items(1), "r0")

    refused = mark(client, waiting, bearer(owner))
    missing = client.post("/api/gold/items/999999/mark", **bearer(owner))

    assert refused.status_code == 400 and "is not human-approved yet" in refused.json()["detail"]
    assert missing.status_code == 404 and missing.json()["detail"] == "No item #999999."
    assert not GoldLabel.objects.exists()


def test_a_bad_page_is_a_422(client, approved, owner):
    response = client.get("/api/policies/match/gold", {"limit": 0}, **bearer(owner))
    unknown = client.get("/api/policies/nope/gold", **bearer(owner))

    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "limit"]
    assert unknown.status_code == 404 and unknown.json()["detail"] == "No policy 'nope'."


def test_once_gold_an_items_review_can_no_longer_be_undone(client, approved, annotator, owner):
    """The page's race rule holds through the API: marking takes the policy lock an undo takes, and an undo of a
    gold item is refused."""
    last = Review.objects.filter(reviewer=annotator).order_by("-created_at", "-id").first()
    mark(client, last.candidate, bearer(owner))

    undo = client.post("/api/reviews/undo", **bearer(annotator))

    assert undo.status_code == 400 and "gold" in undo.json()["detail"]
    assert Review.objects.filter(pk=last.pk).exists()


def test_all_of_a_runs_approved_items_are_marked_at_once_and_again_changes_nothing(
    client, approved, published, annotator, owner
):
    auth = bearer(owner)
    url = f"/api/runs/{approved.pk}/gold/mark-all"

    first = client.post(url, **auth)
    again = client.post(url, **auth)

    assert first.status_code == 200 and (first.json()["added"], first.json()["unchanged"]) == (3, 0)
    assert (again.json()["added"], again.json()["unchanged"], again.json()["conflicts"]) == (0, 3, [])
    assert GoldLabel.objects.count() == 3
    second = rerun_for_review(published)
    approve_all(second, annotator, {"r0": "no_match", "r1": "partial_match", "r2": "no_match"})
    mixed = client.post(f"/api/runs/{second.pk}/gold/mark-all", **auth).json()
    assert (mixed["added"], mixed["unchanged"]) == (0, 2)
    assert [(c["item"], c["gold"]["label"], c["approved_label"]) for c in mixed["conflicts"]] == [
        (item(second, "r0").pk, "strong_match", "no_match")
    ]
    assert GoldLabel.objects.get(pair=item(second, "r0").pair).label == "strong_match"
    assert client.post(f"/api/runs/{approved.pk}/gold/mark-all", **bearer(annotator)).status_code == 403


@pytest.mark.parametrize("caller", CALLERS)
def test_role_matrix(client, caller, approved, annotator, engineer, owner):
    headers = caller_headers(caller, annotator=annotator, engineer=engineer, owner=owner)
    gold = GoldLabel.objects.create(policy=approved.policy_version.policy, pair=item(approved, "r2").pair,
                                    label="no_match")  # fmt: skip

    listed = client.get("/api/policies/match/gold", **headers)
    marked = mark(client, item(approved, "r0"), headers)
    removed = remove(client, gold.pk, "wrong", headers)

    if caller == "policy_owner":
        assert (listed.status_code, marked.status_code, removed.status_code) == (200, 201, 200)
        return
    if caller == "ml_engineer":
        assert listed.status_code == 200 and listed.json()["total"] == 1
    else:
        expect_refused(listed, caller, {"policy_owner", "ml_engineer"})
    for answer in (marked, removed):
        expect_refused(answer, caller, {"policy_owner"})
    assert list(GoldLabel.objects.values_list("label", flat=True)) == ["no_match"]
