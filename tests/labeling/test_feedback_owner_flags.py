# ruff: noqa: F811 - fixtures imported from the preview, feedback and review tests are parameters of the tests below
"""Policy owners flag a policy problem from the pages they work on (a run's items, the adjudication page, the gold
set, a draft preview's flips), not only annotators on the review page: same kinds, rule IDs and note checks,
CSRF, and only policy owners may use this form."""

import pytest
from django.test import Client

from labeling.models import Candidate, GoldLabel, PolicyFeedback
from labeling.services import draft_preview_start

from .test_draft_preview import draft, fake_teacher, run_chunks  # noqa: F401 (fixtures)
from .test_feedback_views import NOTE, run  # noqa: F401 (fixture)
from .test_review_views import _disagree, needs_review, second_annotator  # noqa: F401 (fixtures)

HTMX = {"HTTP_HX_REQUEST": "true"}


def item(run):
    return Candidate.objects.filter(run=run).order_by("id").first()


def flag(client, pk, **data):
    body = {"kind": "unclear_rule", "rule_ids": "R2", "note": NOTE, **data}
    return client.post(f"/items/{pk}/flag/", body, **HTMX)


def test_an_owner_flags_an_item_from_the_run_page(run, owner, client_for):
    client = client_for(owner)
    page = client.get(f"/runs/{run.pk}/?routing=").content.decode()
    candidate = item(run)
    assert f'id="flag-{candidate.pk}"' in page and "Policy feedback</th>" in page
    assert "v1's rules: R1, R2, R3" in page

    response = flag(client, candidate.pk, rule_ids="r2, R3", kind="rules_conflict")

    assert response.status_code == 200
    html = response.content.decode()
    feedback = PolicyFeedback.objects.get()
    assert html.startswith(f'<div class="flag-item" id="flag-{candidate.pk}"') and f"Flag #{feedback.pk} sent" in html
    assert (feedback.kind, feedback.rule_ids, feedback.note, feedback.created_by) == (
        "rules_conflict", ["R2", "R3"], NOTE, owner,
    )  # fmt: skip
    assert (feedback.candidate, feedback.version, feedback.status) == (candidate, run.policy_version, "open")
    assert "<script>alert(1)</script>" not in client.get("/policies/match/feedback/").content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rule_ids": "R9"}, "R9 is not a rule of match v1"),
        ({"kind": "rules_conflict", "rule_ids": "R2"}, "Name at least two rules that conflict"),
        ({"kind": "unclear_rule", "rule_ids": ""}, "Name the rule that is unclear"),
        ({"kind": "not_covered", "rule_ids": "", "note": "  "}, "Say what the problem is in the note"),
        ({"kind": "bogus"}, "&#x27;bogus&#x27; is not a kind of feedback"),
    ],
)
def test_a_refused_flag_says_why_keeps_what_was_typed_and_writes_nothing(run, owner, client_for, data, message):
    response = flag(client_for(owner), item(run).pk, **data)

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and 'role="alert"' in html and "<details open>" in html
    if data.get("rule_ids"):
        assert f'value="{data["rule_ids"]}"' in html
    assert not PolicyFeedback.objects.exists()


@pytest.mark.parametrize(
    ("who", "status"), [("owner", 200), ("annotator", 403), ("engineer", 403), ("nobody", 403), (None, 302)]
)
def test_only_policy_owners_flag_from_their_pages(run, request, client, who, status):
    if who:
        client.force_login(request.getfixturevalue(who))
    response = flag(client, item(run).pk)
    assert response.status_code == status
    assert PolicyFeedback.objects.count() == (1 if who == "owner" else 0)
    if who is None:
        assert response["Location"].startswith("/login/")


def test_pages_offer_the_form_to_owners_only(run, owner, engineer, client_for):
    assert 'class="flag-item"' in client_for(owner).get(f"/runs/{run.pk}/?routing=").content.decode()
    assert 'class="flag-item"' not in client_for(engineer).get(f"/runs/{run.pk}/?routing=").content.decode()


def test_the_flag_needs_the_csrf_token(run, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert flag(client, item(run).pk).status_code == 403
    assert not PolicyFeedback.objects.exists()


def test_without_htmx_the_flag_goes_back_to_the_page_and_never_off_site(run, owner, client_for):
    client, pk = client_for(owner), item(run).pk
    body = {"kind": "not_covered", "rule_ids": "", "note": "Remote work is not covered."}
    back = client.post(f"/items/{pk}/flag/", {**body, "next": f"/runs/{run.pk}/"})
    away = client.post(f"/items/{pk}/flag/", {**body, "next": "https://evil.example/"})
    assert back.status_code == away.status_code == 302
    assert back["Location"] == f"/runs/{run.pk}/" and away["Location"] == "/policies/match/feedback/"
    assert PolicyFeedback.objects.count() == 2


def test_an_item_of_a_draft_or_a_missing_item_is_not_found(draft, owner, openai_config, fake_teacher, client_for):
    preview = draft_preview_start(user=owner, draft=draft, config=openai_config())
    run_chunks(preview)
    client = client_for(owner)
    of_draft = Candidate.objects.filter(run_id=preview.draft_run_id).first()
    assert flag(client, of_draft.pk).status_code == 404
    assert flag(client, 10**9).status_code == 404
    assert not PolicyFeedback.objects.exists()


def test_an_owner_flags_a_flip_of_a_draft_preview_on_the_published_version(
    draft, owner, openai_config, fake_teacher, client_for
):
    preview = draft_preview_start(user=owner, draft=draft, config=openai_config())
    run_chunks(preview)
    client = client_for(owner)
    page = client.get(f"/policies/match/draft/gold-preview/{preview.pk}/").content.decode()
    flips = Candidate.objects.filter(run_id=preview.published_run_id, pair__member__external_id__in=["m1", "m2"])
    flipped = [c for c in flips if f'id="flag-{c.pk}"' in page]
    assert len(flipped) == 3 and page.count('class="flag-item"') == 3  # one per flip, none elsewhere

    response = flag(client, flipped[0].pk, rule_ids="R1")

    assert response.status_code == 200
    feedback = PolicyFeedback.objects.get()
    assert (feedback.version.number, feedback.candidate, feedback.pair_id) == (1, flipped[0], flipped[0].pair_id)


def test_an_owner_flags_a_gold_item(run, owner, policy, client_for):
    candidate = item(run)
    GoldLabel.objects.create(
        policy=policy, pair=candidate.pair, label="no_match", source_candidate=candidate, created_by=owner
    )
    client = client_for(owner)
    gold_page = client.get("/policies/match/gold/").content.decode()
    assert f'id="flag-{candidate.pk}"' in gold_page
    assert flag(client, candidate.pk, rule_ids="R1").status_code == 200
    assert PolicyFeedback.objects.get().candidate == candidate


def test_an_owner_flags_an_item_waiting_for_adjudication(
    pairs, needs_review, annotator, second_annotator, owner, client_for
):
    candidate = _disagree(needs_review(reviewers=2), annotator, second_annotator)
    client = client_for(owner)
    page = client.get("/review/adjudication/").content.decode()
    assert f'id="flag-{candidate.pk}"' in page
    assert flag(client, candidate.pk, kind="not_covered", rule_ids="").status_code == 200
    assert PolicyFeedback.objects.get().candidate == candidate and candidate.reviews.count() == 2
