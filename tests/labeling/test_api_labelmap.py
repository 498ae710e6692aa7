"""The label mapping over the API: a policy owner saves a draft's mapping with ``PUT /api/policies/{slug}/draft``
(refused per entry with a 400 that changes nothing), reads it back and on the diff, lists the gold items of the
labels it splits, relabels them (bad choices are 400s saying why), and publishing answers 400 with the relabel
gate until they are done; drafts are their owners' only."""

import pytest

from labeling.models import GoldLabel, GoldRelabel
from tests.api_roles import CALLERS, bearer, caller_headers, expect_refused

from .gold_helpers import DRAFT_MARK, make_gold
from .labelmap_helpers import MAPPING, NEW_LABELS, SPLIT_PAIR, pair
from .test_gold_scoring import GOLD

DRAFT_URL = "/api/policies/match/draft"
RELABEL_URL = "/api/policies/match/draft/relabel"


def put_draft(client, auth, draft, **changes):
    body = {"revision": draft.revision, "body": f"# Match\n\n{DRAFT_MARK}\n", "labels": NEW_LABELS,
            "rules": draft.rules, **changes}  # fmt: skip
    return client.put(DRAFT_URL, body, content_type="application/json", **auth)


@pytest.fixture
def gold(pairs, policy, owner):
    make_gold(policy, GOLD, user=owner)
    return policy.versions.get(number=2)


def test_an_owner_maps_relabels_and_publishes_over_the_api(client, gold, policy, owner):
    auth = bearer(owner)

    saved = put_draft(client, auth, gold, label_mapping=MAPPING)

    assert saved.status_code == 200, saved.content
    assert (saved.json()["label_mapping"], saved.json()["based_on"]) == (MAPPING, 1)
    # a save without the field keeps the mapping
    kept = client.put(DRAFT_URL, {**saved.json(), "revision": saved.json()["revision"]},
                      content_type="application/json", **auth)  # fmt: skip
    assert kept.status_code == 200 and kept.json()["label_mapping"] == MAPPING
    diff = client.get("/api/policies/match/diff", {"old": 1, "new": 2}, **auth).json()
    assert diff["label_mapping"] == [
        {"old": "strong_match", "new": ["great_match"], "kind": "rename"},
        {"old": "partial_match", "new": ["maybe_match", "stretch_match"], "kind": "split"},
    ]
    listed = client.get(RELABEL_URL, **auth).json()
    split = pair(*SPLIT_PAIR)
    assert (listed["needs_relabel"], listed["draft"], listed["based_on"]) == (1, 2, 1)
    assert listed["items"] == [{
        "pair_id": split.pk, "member_id": "m2", "job_id": "j2", "gold_label": "partial_match",
        "choices": ["maybe_match", "stretch_match"], "label": None, "relabelled_by": None,
    }]  # fmt: skip

    revision = kept.json()["revision"]
    blocked = client.post(f"{DRAFT_URL}/publish", {"revision": revision}, content_type="application/json", **auth)
    assert blocked.status_code == 400
    assert "Gold relabelled after split" in blocked.json()["detail"]
    gate = next(r for r in blocked.json()["gates"]["results"] if r["key"] == "gold_relabel")
    assert (gate["status"], gate["blocking"], gate["figure"]) == ("failed", True, 1.0)

    relabelled = client.put(f"{RELABEL_URL}/{split.pk}", {"label": "maybe_match"}, content_type="application/json",
                            **auth)  # fmt: skip
    assert relabelled.status_code == 200, relabelled.content
    assert (relabelled.json()["label"], relabelled.json()["relabelled_by"]) == ("maybe_match", "olivia")

    published = client.post(f"{DRAFT_URL}/publish", {"revision": revision}, content_type="application/json", **auth)
    assert published.status_code == 200, published.content
    assert published.json()["label_mapping"] == MAPPING and published.json()["status"] == "published"
    assert GoldLabel.objects.get(pair=split).label == "maybe_match"
    assert client.get(RELABEL_URL, **auth).status_code == 404  # no draft any more


@pytest.mark.parametrize(
    ("mapping", "field", "message"),
    [
        ({"strong": ["great_match"]}, "strong", "'strong' is not a label of the previous version"),
        ({"strong_match": ["grand_match"]}, "strong_match", "strong_match → 'grand_match': 'grand_match' is not"),
        ({"strong_match": []}, "strong_match", "strong_match maps to no new label"),
        ({}, "strong_match", "strong_match is removed but gold labels use it"),
    ],
)
def test_a_bad_mapping_is_a_400_naming_the_entry_and_changes_nothing(client, gold, owner, mapping, field, message):
    answer = put_draft(client, bearer(owner), gold, label_mapping={"partial_match": ["maybe_match"], **mapping})

    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert any(e["section"] == "label_mapping" and e["field"] == field and e["message"].startswith(message)
               for e in errors), errors  # fmt: skip
    gold.refresh_from_db()
    assert (gold.revision, gold.label_mapping) == (1, {})


def test_a_mapping_that_is_not_a_dict_of_lists_is_a_422(client, gold, owner):
    answer = put_draft(client, bearer(owner), gold, label_mapping={"strong_match": "great_match"})
    assert answer.status_code == 422


def test_relabel_refusals_say_why(client, gold, owner):
    auth = bearer(owner)
    put_draft(client, auth, gold, label_mapping=MAPPING)
    split, other = pair(*SPLIT_PAIR), pair("m1", "j1")

    wrong = client.put(f"{RELABEL_URL}/{split.pk}", {"label": "no_match"}, content_type="application/json", **auth)
    not_split = client.put(f"{RELABEL_URL}/{other.pk}", {"label": "great_match"}, content_type="application/json",
                           **auth)  # fmt: skip

    assert wrong.status_code == 400
    assert wrong.json()["detail"] == (
        "label: partial_match splits into maybe_match, stretch_match; 'no_match' is not one of them."
    )
    assert not_split.status_code == 400
    assert "is not a gold item of a label draft v2 splits" in not_split.json()["detail"]
    assert not GoldRelabel.objects.exists()


@pytest.mark.parametrize("caller", CALLERS)
def test_role_matrix(client, caller, gold, annotator, engineer, owner):
    put_draft(client, bearer(owner), gold, label_mapping=MAPPING)
    split = pair(*SPLIT_PAIR)
    headers = caller_headers(caller, annotator=annotator, engineer=engineer, owner=owner)

    answers = [
        client.get(RELABEL_URL, **headers),
        client.put(f"{RELABEL_URL}/{split.pk}", {"label": "maybe_match"}, content_type="application/json", **headers),
    ]

    if caller == "policy_owner":
        assert [a.status_code for a in answers] == [200, 200]
    else:
        for answer in answers:
            expect_refused(answer, caller, {"policy_owner"})
        assert not GoldRelabel.objects.exists()
