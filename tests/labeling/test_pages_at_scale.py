"""Pages that must not grow with the data (issue 15, ``bench/pages.py``): the same number of queries at two sizes, the
gold lists paged, a finished run's counts kept and equal to a fresh computation after every change, and the run
timeline's one-pass query equal to the per-row form it replaced."""

import pytest
from django.utils import timezone

from labeling.models import Candidate, FiguresSnapshot, GoldLabel, LabelingRun, TeacherSample
from labeling.selectors import runs as run_selectors
from labeling.services import figures, figures_refresh, gold_mark, review_claim_next, review_submit
from policyhub import roles


@pytest.fixture
def no_inline(monkeypatch):
    monkeypatch.setattr(figures, "INLINE_REFRESH_BELOW", 0)


def _approved(review_items, make_user, n: int) -> LabelingRun:
    """A run of ``n`` items, every one reviewed (human-approved)."""
    annotator = make_user("ann_scale", roles.ANNOTATOR)
    run = review_items(n)
    while (item := review_claim_next(user=annotator, run_id=run.pk)) is not None:
        review_submit(user=annotator, candidate_id=item.pk, label=["strong_match", "no_match"][item.pk % 2])
    return run


def _finished(run: LabelingRun, minutes: int = 3) -> LabelingRun:
    """The run ended, each candidate decided by one sample spread over ``minutes``."""
    start = timezone.now() - timezone.timedelta(minutes=minutes)
    samples = [
        TeacherSample(run=run, pair_id=c.pair_id, sample_index=0, label=c.label, cited_rules=["R1"])
        for c in Candidate.objects.filter(run=run).order_by("id")
    ]
    TeacherSample.objects.bulk_create(samples)
    for k, sample in enumerate(samples):
        at = start + timezone.timedelta(seconds=k * minutes * 60 // max(len(samples), 1))
        TeacherSample.objects.filter(pk=sample.pk).update(created_at=at)
    LabelingRun.objects.filter(pk=run.pk).update(status=LabelingRun.Status.SUCCEEDED, finished_at=timezone.now())
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("n", [3, 130])
def test_the_gold_pages_take_the_same_queries_at_any_size(
    n, review_items, make_user, owner, client_for, django_assert_max_num_queries
):
    run = _approved(review_items, make_user, n)
    for candidate in Candidate.objects.filter(run=run):
        gold_mark(user=owner, candidate_id=candidate.pk)
    client, slug = client_for(owner), run.policy_version.policy.slug
    with django_assert_max_num_queries(12):
        page = client.get(f"/policies/{slug}/gold/").content.decode()
    assert f'<strong id="gold-total">{n}</strong>' in page and f'<tr data-run="{run.pk}">' in page
    assert page.count('class="mono gold-label"') == min(n, 100)  # a page of the list, the count of all
    with django_assert_max_num_queries(12):
        page = client.get(f"/runs/{run.pk}/gold/").content.decode()
    assert f"{n} human-approved item" in page and f"{n} already gold with the same label" in page
    assert page.count("<tr data-candidate=") == min(n, 100)
    if n > 100:
        rest = client.get(f"/policies/{slug}/gold/?page=2").content.decode()
        assert rest.count('class="mono gold-label"') == n - 100


def test_the_gold_set_page_counts_approved_and_gold_items_per_run(review_items, make_user, owner, client_for):
    run = _approved(review_items, make_user, 4)
    other = Candidate.objects.filter(run=run).order_by("id")
    gold_mark(user=owner, candidate_id=other[0].pk)
    GoldLabel.objects.filter(pair_id=other[0].pair_id).update(label="partial_match")  # gold, another label
    gold_mark(user=owner, candidate_id=other[1].pk)
    page = client_for(owner).get(f"/policies/{run.policy_version.policy.slug}/gold/").content.decode()
    assert f'<tr data-run="{run.pk}"><td>#{run.pk}</td>' in page
    row = page.split(f'<tr data-run="{run.pk}">')[1].split("</tr>")[0]
    assert "<td>4</td><td>2</td>" in row  # four human-approved, two of them gold
    items = client_for(owner).get(f"/runs/{run.pk}/gold/").content.decode()
    assert "1 already gold with the same label, 1 gold with a different label" in items


@pytest.mark.parametrize("n", [3, 60])
def test_a_finished_runs_page_takes_the_same_queries_at_any_size(
    n, review_items, engineer, client_for, django_assert_max_num_queries, no_inline
):
    run = _finished(review_items(n))
    client = client_for(engineer)
    client.get(f"/runs/{run.pk}/")  # the first view computes the kept figures
    with django_assert_max_num_queries(22):
        page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Counts, trust rates and timeline computed at" in page
    with django_assert_max_num_queries(14):
        figures_out = client.get(f"/api/runs/{run.pk}").json()
    assert figures_out["routing"]["needs_review"] == n


def test_a_finished_runs_kept_figures_equal_a_fresh_computation_after_changes(
    review_items, engineer, client_for, no_inline
):
    run = _finished(review_items(5))
    snapshot = FiguresSnapshot.objects.get(pk=figures.run_page_snapshot(run=run).pk)
    live = run_selectors.run_page_live(run=run)
    kept = run_selectors.run_page_from_snapshot(snapshot)
    assert (kept.summary, kept.trust.counts, kept.timeline, kept.labelled) == (
        live.summary,
        live.trust.counts,
        live.timeline,
        live.labelled,
    )
    # a student's disagreement queues one of its items: its routing reasons change, so the kept figures are stale
    candidate = Candidate.objects.filter(run=run).first()
    figures.figures_mark_stale(run_ids=[run.pk])
    Candidate.objects.filter(pk=candidate.pk).update(reason_student_disagreement=True)
    snapshot.refresh_from_db()
    assert snapshot.stale
    page = client_for(engineer).get(f"/runs/{run.pk}/").content.decode()
    assert "changed since: updated figures are being computed" in page
    assert figures_refresh(snapshot_id=snapshot.pk)
    snapshot.refresh_from_db()
    kept, live = run_selectors.run_page_from_snapshot(snapshot), run_selectors.run_page_live(run=run)
    assert kept.summary == live.summary and kept.summary["reasons"]["student_disagreement"] == 1
    assert kept.timeline == live.timeline


def test_reviews_leave_a_finished_runs_page_figures_alone(review_items, make_user, engineer, client_for):
    run = _finished(review_items(2))
    snapshot = figures.run_page_snapshot(run=run)
    annotator = make_user("ann_page", roles.ANNOTATOR)
    item = review_claim_next(user=annotator, run_id=run.pk)
    review_submit(user=annotator, candidate_id=item.pk, label="no_match")
    snapshot.refresh_from_db()
    assert not snapshot.stale  # routing counts, trust and timeline do not depend on reviews


def test_the_timeline_in_one_pass_equals_the_per_row_form(review_items):
    run = _finished(review_items(40), minutes=30)
    Candidate.objects.filter(run=run, pk__in=Candidate.objects.filter(run=run).order_by("id")[:7]).update(
        status="failed", routing=""
    )
    Candidate.objects.filter(run=run, pair_id__in=Candidate.objects.filter(run=run).values("pair_id")[:5]).update(
        routing="auto_accepted", reason_low_confidence=False, review_state="", reviews_needed=0
    )
    for unit in ("second", "minute", "hour"):
        one_pass = run_selectors._decided_per_bucket(run, unit)
        assert one_pass == run_selectors._decided_per_bucket_per_row(run, unit), unit
        assert sum(row["failed"] for row in one_pass) == 7
    timeline = run_selectors.run_timeline(run=run)
    assert (
        timeline.unit == "minute"
        and timeline.buckets[-1]["labeled_total"] + timeline.buckets[-1]["failed_total"]
        == Candidate.objects.filter(run=run).exclude(status="pending").count()
    )


def _ids(page: str) -> list[int]:
    import re

    return [int(pk) for pk in re.findall(r'data-candidate-id="(\d+)"', page)]


def test_the_candidate_table_pages_by_id_forward_and_back_in_the_same_queries(
    review_items, engineer, client_for, django_assert_max_num_queries
):
    """A run's candidate table is read a page at a time after (or before) a candidate id, never with an OFFSET:
    the last page of a million-candidate run costs what the first does."""
    import html
    import re

    run = review_items(130)
    ids = list(Candidate.objects.filter(run=run).order_by("id").values_list("id", flat=True))
    client = client_for(engineer)

    def follow(page: str, link: str) -> str:
        href = html.unescape(re.search(rf'href="([^"]+)" id="candidates-{link}"', page).group(1))
        return client.get(f"/runs/{run.pk}/{href}").content.decode()

    first = client.get(f"/runs/{run.pk}/").content.decode()
    assert _ids(first) == ids[:50] and "50 of 130" in first and 'id="candidates-previous"' not in first
    with django_assert_max_num_queries(30) as first_queries:
        second = follow(first, "next")
    assert _ids(second) == ids[50:100]
    with django_assert_max_num_queries(len(first_queries)):  # deeper costs no more
        third = follow(second, "next")
    assert _ids(third) == ids[100:] and 'id="candidates-next"' not in third and "30 of 130" in third
    assert _ids(follow(third, "previous")) == ids[50:100]
    assert _ids(follow(second, "previous")) == ids[:50]
    # a cursor past either end offers the way back; nonsense reads as the first page
    past = client.get(f"/runs/{run.pk}/?after={ids[-1]}").content.decode()
    assert _ids(past) == [] and 'id="candidates-previous"' in past
    assert _ids(client.get(f"/runs/{run.pk}/?after=x1&before=-3").content.decode()) == ids[:50]


def test_the_candidates_api_pages_after_an_id(review_items, engineer, client):
    from tests.api_roles import bearer

    run = review_items(130)
    ids = list(Candidate.objects.filter(run=run).order_by("id").values_list("id", flat=True))
    headers = bearer(engineer)
    got, after = [], None
    while True:
        query = f"?limit=40&after={after}" if after is not None else "?limit=40"
        page = client.get(f"/api/runs/{run.pk}/candidates{query}", **headers).json()
        if not page:
            break
        got += [row["id"] for row in page]
        after = page[-1]["id"]
    assert got == ids
    refused = client.get(f"/api/runs/{run.pk}/candidates?after=-1", **headers)
    assert refused.status_code == 422
