"""The gold pages: mark gold from the adjudication page and from a run's reviewed items, the explicit replacement
of a different gold label, the gold set list with counts, sources and the recorded removal."""

import pytest

from labeling.models import GoldLabel, GoldLabelEvent
from policyhub import roles

from .gold_helpers import adjudicate, approve_all
from .test_gold_set import item, rerun_for_review


@pytest.fixture
def second_annotator(make_user):
    return make_user("bea", roles.ANNOTATOR)


def test_a_decided_item_is_marked_gold_from_the_adjudication_page(
    review_items, annotator, second_annotator, owner, client_for
):
    run = review_items(1, reviewers=2)
    candidate = adjudicate(item(run, "r0"), owner, annotator, second_annotator, final="partial_match")
    client = client_for(owner)

    page = client.get("/review/adjudication/").content.decode()
    marked = client.post(f"/gold/items/{candidate.pk}/mark/", {"next": "/review/adjudication/"}, follow=True)
    gold_page = client.get("/policies/match/gold/").content.decode()

    assert f'action="/gold/items/{candidate.pk}/mark/"' in page
    assert marked.redirect_chain == [("/review/adjudication/", 302)]
    assert "Pair r0 × rj is now gold as partial_match." in marked.content.decode()
    assert GoldLabel.objects.get().label == "partial_match"
    assert '<strong id="gold-total">1</strong>' in gold_page
    assert '<span class="mono">partial_match</span> <span class="count">1</span>' in gold_page
    assert f"item #{candidate.pk}, run #{run.pk} (adjudicator)" in gold_page


def test_the_htmx_decision_offers_mark_gold(review_items, annotator, second_annotator, owner, client_for):
    run = review_items(1, reviewers=2)
    candidate = item(run, "r0")
    adjudicate(candidate, owner, annotator, second_annotator, final="no_match")

    # the owner decided elsewhere meanwhile: the partial for the decided item still offers "Mark gold"
    response = client_for(owner).post(
        f"/review/adjudication/{candidate.pk}/", {"label": "no_match", "reason": "x"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 400  # already decided
    html = response.content.decode()
    assert "Mark gold with this label" in html and 'name="next" value="/review/adjudication/"' in html


def test_a_different_gold_label_is_shown_and_replaced_only_on_request(
    review_items, published, annotator, owner, client_for
):
    first = review_items(1)
    approve_all(first, annotator, {"r0": "strong_match"})
    client = client_for(owner)
    client.post(f"/gold/items/{item(first, 'r0').pk}/mark/")
    second = rerun_for_review(published)
    approve_all(second, annotator, {"r0": "no_match"})
    newer = item(second, "r0")
    back = f"/runs/{second.pk}/gold/"

    refused = client.post(f"/gold/items/{newer.pk}/mark/", {"next": back})

    assert refused.status_code == 409
    html = refused.content.decode()
    assert '<td class="mono" id="gold-now">strong_match</td>' in html
    assert '<td class="mono" id="gold-new">no_match</td>' in html
    assert 'name="replace" value="1"' in html and f'href="{back}">Keep strong_match' in html
    assert GoldLabel.objects.get().label == "strong_match"

    replaced = client.post(f"/gold/items/{newer.pk}/mark/", {"next": back, "replace": "1"})

    assert replaced.status_code == 302 and replaced.url == back
    assert GoldLabel.objects.get().label == "no_match"


def test_a_runs_reviewed_items_are_marked_gold_all_at_once_twice_without_change(
    review_items, annotator, owner, client_for
):
    run = review_items(3)
    approve_all(run, annotator, {"r0": "strong_match", "r1": "no_match", "r2": "no_match"})
    client = client_for(owner)

    page = client.get(f"/runs/{run.pk}/gold/").content.decode()
    first = client.post(f"/runs/{run.pk}/gold/mark-all/", follow=True).content.decode()
    second = client.post(f"/runs/{run.pk}/gold/mark-all/", follow=True).content.decode()

    assert page.count("<tr data-candidate=") == 3 and "Mark all human-approved items of this run as gold" in page
    assert f"Run #{run.pk}: 3 added to the gold set; 0 already gold with the same label." in first
    assert f"Run #{run.pk}: 0 added to the gold set; 3 already gold with the same label." in second
    assert second.count('<span class="badge added">gold</span>') == 3
    assert GoldLabel.objects.count() == 3 and GoldLabelEvent.objects.count() == 3


def test_removing_from_the_gold_set_page_is_recorded_and_needs_a_reason(
    review_items, annotator, owner, engineer, client_for, client
):
    run = review_items(1)
    approve_all(run, annotator, {"r0": "strong_match"})
    owner_client = client_for(owner)
    owner_client.post(f"/gold/items/{item(run, 'r0').pk}/mark/")
    gold = GoldLabel.objects.get()

    no_reason = owner_client.post(f"/policies/match/gold/{gold.pk}/remove/", {"reason": ""}, follow=True)
    assert "Say why the gold label is removed" in no_reason.content.decode() and GoldLabel.objects.exists()
    removed = owner_client.post(f"/policies/match/gold/{gold.pk}/remove/", {"reason": "Stale profile."}, follow=True)

    html = removed.content.decode()
    assert not GoldLabel.objects.exists()
    assert "Removed gold label strong_match of pair r0 × rj" in html
    assert '<tr data-action="removed">' in html and "Stale profile." in html and "olivia" in html
    client.logout()
    engineer_view = client_for(engineer).get("/policies/match/gold/").content.decode()
    assert '<tr data-action="removed">' in engineer_view and "remove-gold" not in engineer_view
