"""Kept agreement figures (FiguresSnapshot): always those a from-scratch computation gives for the data as of their
``computed_at``, marked stale by every review, undo and adjudication, refreshed by the task (a real worker below),
and read with a constant number of queries whatever the number of reviews."""

import pytest
from django.utils import timezone

from labeling.models import Candidate, FiguresSnapshot, LabelingRun
from labeling.selectors import agreement_figures, run_agreement, snapshot_report, version_agreement
from labeling.services import (
    agreement_snapshot,
    figures,
    figures_refresh,
    review_adjudicate,
    review_claim_next,
    review_submit,
    review_undo_last,
)
from policyhub import roles
from tests.celery_worker import Worker, purge_queue, worker_database_url

LABELS = ["strong_match", "partial_match", "no_match"]


def _kept(snapshot: FiguresSnapshot, version, precision: float = 0.95) -> dict:
    snapshot.refresh_from_db()
    figures = agreement_figures(snapshot_report(snapshot, version=version, target_precision=precision))
    figures.pop("computed_at"), figures.pop("stale")
    return figures


def _fresh(run: LabelingRun, precision: float = 0.95) -> dict:
    return agreement_figures(run_agreement(run=run, target_precision=precision))


@pytest.fixture
def small_inline(monkeypatch):
    """Pages never refresh inline: what the page shows is the kept snapshot, as on a large installation."""
    monkeypatch.setattr(figures, "INLINE_REFRESH_BELOW", 0)


def _review_all(run, users, plan):
    """Each user reviews every item it is offered with ``plan(user index, item index)``."""
    items = [c.pk for c in Candidate.objects.filter(run=run).order_by("id")]
    for u, user in enumerate(users):
        while (item := review_claim_next(user=user, run_id=run.pk)) is not None:
            review_submit(user=user, candidate_id=item.pk, label=plan(u, items.index(item.pk)))


def test_kept_figures_equal_a_fresh_computation_after_every_kind_of_write(review_items, make_user, owner, small_inline):
    a, b = make_user("ann_a", roles.ANNOTATOR), make_user("ann_b", roles.ANNOTATOR)
    run = review_items(6, reviewers=2)
    for k, item in enumerate(Candidate.objects.filter(run=run).order_by("id")):
        Candidate.objects.filter(pk=item.pk).update(confidence=[0.5, 0.6, 0.7, 0.8, 0.9, 1.0][k])
    version = run.policy_version
    run_snapshot, version_snapshot = agreement_snapshot(run=run), agreement_snapshot(version=version)
    assert _kept(run_snapshot, version) == _fresh(run) and _fresh(run)["reviews"] == 0

    def check(what: str):
        for snapshot in (run_snapshot, version_snapshot):
            snapshot.refresh_from_db()
            assert snapshot.stale, f"{what} did not mark the figures stale"
            assert figures_refresh(snapshot_id=snapshot.pk)
        assert _kept(run_snapshot, version) == _fresh(run), what
        assert _kept(run_snapshot, version, 0.5) == _fresh(run, 0.5), what
        kept_version = _kept(version_snapshot, version)
        assert kept_version == agreement_figures(version_agreement(version=version)), what

    # a disagrees with b on items 1 and 4; everything else agrees
    _review_all(run, [a], lambda u, k: LABELS[k % 3])
    check("a's reviews")
    _review_all(run, [b], lambda u, k: LABELS[(k + (k in (1, 4))) % 3])
    check("b's reviews")
    assert _kept(run_snapshot, version)["items_multi"] == 6
    waiting = Candidate.objects.filter(run=run, review_state="adjudication").order_by("id")
    review_adjudicate(user=owner, candidate_id=waiting[0].pk, label="no_match", reason="R1 decides.")
    check("an adjudication")
    review_undo_last(user=b)
    check("an undo")
    assert _kept(run_snapshot, version)["reviews"] == 11
    before = FiguresSnapshot.objects.get(pk=run_snapshot.pk).computed_at
    assert not figures_refresh(snapshot_id=run_snapshot.pk)  # fresh: nothing to do, nothing recomputed
    assert FiguresSnapshot.objects.get(pk=run_snapshot.pk).computed_at == before


def test_the_page_shows_kept_figures_with_their_time_and_says_when_newer_are_coming(
    review_items, make_user, owner, client_for, small_inline
):
    a = make_user("ann_a", roles.ANNOTATOR)
    run = review_items(3, reviewers=1)
    page = client_for(owner).get(f"/runs/{run.pk}/agreement/").content.decode()
    assert 'data-value="reviews">0<' in page and "Figures computed at" in page and "being computed" not in page
    _review_all(run, [a], lambda u, k: "strong_match")
    page = client_for(owner).get(f"/runs/{run.pk}/agreement/").content.decode()
    assert 'data-value="reviews">0<' in page and "reviews changed since: updated figures are being computed" in page
    figures_refresh(snapshot_id=FiguresSnapshot.objects.get(run=run).pk)
    page = client_for(owner).get(f"/runs/{run.pk}/agreement/").content.decode()
    assert 'data-value="reviews">3<' in page and "being computed" not in page


def test_a_small_installation_sees_its_reviews_at_once(review_items, make_user, owner, client_for):
    a = make_user("ann_a", roles.ANNOTATOR)
    run = review_items(3, reviewers=1)
    client_for(owner).get(f"/runs/{run.pk}/agreement/")
    _review_all(run, [a], lambda u, k: "strong_match")
    page = client_for(owner).get(f"/runs/{run.pk}/agreement/").content.decode()
    assert 'data-value="reviews">3<' in page and "being computed" not in page


@pytest.mark.parametrize("items", [4, 40])
def test_the_agreement_reads_take_the_same_queries_at_any_size(
    items, review_items, make_user, owner, client_for, django_assert_max_num_queries, small_inline
):
    a, b = make_user("ann_a", roles.ANNOTATOR), make_user("ann_b", roles.ANNOTATOR)
    run = review_items(items, reviewers=2)
    _review_all(run, [a, b], lambda u, k: LABELS[(k + u * (k % 5 == 0)) % 3])
    client = client_for(owner)
    client.get(f"/runs/{run.pk}/agreement/")  # the first view computes them
    slug, number = run.policy_version.policy.slug, run.policy_version.number
    client.get(f"/policies/{slug}/v{number}/agreement/")
    for url in (f"/runs/{run.pk}/agreement/", f"/policies/{slug}/v{number}/agreement/",
                f"/api/runs/{run.pk}/agreement", f"/api/policies/{slug}/versions/{number}/agreement"):  # fmt: skip
        with django_assert_max_num_queries(9):
            assert client.get(url).status_code == 200


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_refreshes_the_figures_after_a_review_commits(review_items, make_user, tmp_path, small_inline):
    a = make_user("ann_a", roles.ANNOTATOR)
    run = review_items(3, reviewers=1)
    snapshot = agreement_snapshot(run=run)
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url()).start()
    try:
        _review_all(run, [a], lambda u, k: "partial_match")
        worker.wait_for(
            lambda: (
                not FiguresSnapshot.objects.get(pk=snapshot.pk).stale
                and FiguresSnapshot.objects.get(pk=snapshot.pk).figures["reviews"] == 3
            ),
            "the worker to refresh the figures",
        )
    finally:
        worker.stop()
    kept = FiguresSnapshot.objects.get(pk=snapshot.pk)
    assert _kept(kept, run.policy_version) == _fresh(run)
    assert kept.computed_at <= timezone.now()


def test_only_policy_owners_and_ml_engineers_read_kept_figures(review_items, annotator, client_for):
    run = review_items(2, reviewers=1)
    assert client_for(annotator).get(f"/runs/{run.pk}/agreement/").status_code == 403
    assert client_for(annotator).get(f"/api/runs/{run.pk}/agreement").status_code == 403
    assert not FiguresSnapshot.objects.exists()  # nothing computed for a refused reader
