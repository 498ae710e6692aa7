"""The draft editor's per-rule override counts are kept figures (``version_rules``, one per version): equal to a
from-scratch count after every review, adjudication and undo once refreshed, marked stale by those writes (the page
says newer counts are coming), refreshed by a real worker, and read in the same number of queries whatever the
number of runs, reviews and versions. The trends and version pages read their runs' kept figures in one query too."""

import re

import pytest
from django.utils import timezone

from labeling.models import Candidate, FiguresSnapshot, LabelingRun, TeacherSample
from labeling.selectors.feedback import rule_feedback
from labeling.services import (
    figures,
    figures_refresh,
    review_adjudicate,
    review_claim_next,
    review_submit,
    review_undo_last,
    rule_overrides,
)
from policyhub import roles
from policyhub import services as policy_services
from tests.celery_worker import Worker, purge_queue, worker_database_url

RULES_SHOWN = ("R1", "R2", "R3")


@pytest.fixture
def no_inline(monkeypatch):
    """Pages never refresh inline: what the editor shows is the kept snapshot, as on a large installation."""
    monkeypatch.setattr(figures, "INLINE_REFRESH_BELOW", 0)


def _cite(run: LabelingRun) -> None:
    """Each item's teacher sample (strong_match) cites R1 (odd items) or R2 and R3 (even ones)."""
    for k, candidate in enumerate(Candidate.objects.filter(run=run).order_by("id")):
        TeacherSample.objects.create(
            run=run, pair=candidate.pair, sample_index=0, label="strong_match", rationale="fits",
            cited_rules=["R1"] if k % 2 else ["R2", "R3"],
        )  # fmt: skip


def _shown(page: str) -> dict[str, tuple[int, int]]:
    """{rule: (overridden, reviewed)} as the editor shows them next to each rule; (0, 0) for 'no reviewed item'."""
    shown = {}
    for rule in RULES_SHOWN:
        block = page.split(f'data-rule-feedback="{rule}"')[1].split("</div>")[0]
        found = re.search(r"<strong>(\d+) of (\d+)</strong>", block)
        assert found or "no reviewed item cites" in block, block
        shown[rule] = (int(found[1]), int(found[2])) if found else (0, 0)
    return shown


def _from_scratch(policy) -> dict[str, tuple[int, int]]:
    stats = rule_feedback(policy=policy)  # the grouped query over every reviewed item
    return {rule: (stats[rule].overridden, stats[rule].reviewed) if rule in stats else (0, 0) for rule in RULES_SHOWN}


def _editor(client, policy) -> str:
    response = client.get(f"/policies/{policy.slug}/draft/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_editor_shows_kept_counts_and_the_exact_ones_after_each_refresh(
    review_items, make_user, owner, client_for, policy, no_inline
):
    a, b = make_user("ann_a", roles.ANNOTATOR), make_user("ann_b", roles.ANNOTATOR)
    run = review_items(4, reviewers=2)
    _cite(run)
    client = client_for(owner)
    page = _editor(client, policy)  # the first view computes the counts
    assert _shown(page) == dict.fromkeys(RULES_SHOWN, (0, 0)) and "override counts computed at" in page
    snapshot = FiguresSnapshot.objects.get(kind=FiguresSnapshot.Kind.VERSION_RULES, version=run.policy_version)

    def check(what: str, before: dict) -> dict:
        page = _editor(client, policy)
        assert _shown(page) == before, f"{what}: the page shows the kept counts until they are refreshed"
        assert "reviews changed since: updated figures are being computed" in page, f"{what} did not mark them stale"
        assert figures_refresh(snapshot_id=snapshot.pk)
        page = _editor(client, policy)
        assert _shown(page) == _from_scratch(policy), what
        assert "being computed" not in page
        return _shown(page)

    items = list(Candidate.objects.filter(run=run).order_by("id").values_list("pk", flat=True))
    shown = dict.fromkeys(RULES_SHOWN, (0, 0))
    for user, labels in ((a, ["strong_match", "no_match", "strong_match", "strong_match"]),
                         (b, ["strong_match", "strong_match", "partial_match", "strong_match"])):  # fmt: skip
        while (item := review_claim_next(user=user, run_id=run.pk)) is not None:
            review_submit(user=user, candidate_id=item.pk, label=labels[items.index(item.pk)])
        shown = check(f"{user.username}'s reviews", shown)
    # a overrode item 1 (R1), b item 2 (R2, R3): one of two items citing each rule
    assert shown == {"R1": (1, 2), "R2": (1, 2), "R3": (1, 2)}
    waiting = Candidate.objects.filter(run=run, review_state="adjudication").order_by("id")
    review_adjudicate(user=owner, candidate_id=waiting[0].pk, label="no_match", reason="R1 decides.")
    shown = check("an adjudication", shown)
    review_undo_last(user=b)  # b's review of the last item (strong_match, agreeing): it is reviewed by a only now
    shown = check("an undo", shown)
    assert shown == {"R1": (1, 2), "R2": (1, 2), "R3": (1, 2)}
    assert not figures_refresh(snapshot_id=snapshot.pk)  # fresh: nothing recomputed


def test_the_counts_add_up_over_the_versions_and_follow_a_new_run(
    reviewed_runs, review_items, make_user, policy, owner, client_for, no_inline
):
    reviewed_runs(2, 4)
    v2 = policy_services.policy_version_publish(
        version=policy.versions.get(number=2), user=owner, override_reason="test data"
    )
    LabelingRun.objects.filter(pk=LabelingRun.objects.latest("pk").pk).update(policy_version=v2)
    policy_services.policy_version_draft_start(policy=policy, user=owner)
    client = client_for(owner)
    assert _shown(_editor(client, policy)) == _from_scratch(policy) == {"R1": (3, 4), "R2": (3, 4), "R3": (3, 4)}
    assert FiguresSnapshot.objects.filter(kind=FiguresSnapshot.Kind.VERSION_RULES).count() == 2  # v1 and v2

    run = review_items(4)  # a third run, on v1, of the same pairs: one review, read before and after the refresh
    _cite(run)
    annotator = make_user("cai", roles.ANNOTATOR)
    item = review_claim_next(user=annotator, run_id=run.pk)
    review_submit(user=annotator, candidate_id=item.pk, label="no_match")
    page = _editor(client, policy)
    assert "being computed" in page and _shown(page) == {"R1": (3, 4), "R2": (3, 4), "R3": (3, 4)}
    stale = FiguresSnapshot.objects.get(kind=FiguresSnapshot.Kind.VERSION_RULES, stale=True)
    assert stale.version_id == run.policy_version_id  # v2's counts are left alone
    figures_refresh(snapshot_id=stale.pk)
    assert _shown(_editor(client, policy)) == _from_scratch(policy) == {"R1": (3, 4), "R2": (4, 5), "R3": (4, 5)}


def test_a_small_installation_sees_its_reviews_in_the_editor_at_once(
    review_items, make_user, owner, client_for, policy
):
    a = make_user("ann_a", roles.ANNOTATOR)
    run = review_items(2)
    _cite(run)
    client = client_for(owner)
    _editor(client, policy)
    while (item := review_claim_next(user=a, run_id=run.pk)) is not None:
        review_submit(user=a, candidate_id=item.pk, label="no_match")
    page = _editor(client, policy)
    assert _shown(page) == {"R1": (1, 1), "R2": (1, 1), "R3": (1, 1)} and "being computed" not in page


@pytest.mark.parametrize("runs, items, versions", [(1, 2, 1), (3, 6, 2)])
def test_the_editor_takes_the_same_queries_at_any_size(
    reviewed_runs, policy, owner, client_for, django_assert_max_num_queries, no_inline, runs, items, versions
):
    reviewed_runs(runs, items)
    if versions == 2:  # v2 published too, with the last run; the draft is v3
        v2 = policy_services.policy_version_publish(
            version=policy.versions.get(number=2), user=owner, override_reason="test data"
        )
        LabelingRun.objects.filter(pk=LabelingRun.objects.latest("pk").pk).update(policy_version=v2)
        policy_services.policy_version_draft_start(policy=policy, user=owner)
    client = client_for(owner)
    _editor(client, policy)  # the first view computes the kept counts
    with django_assert_max_num_queries(10):
        page = _editor(client, policy)
    assert _shown(page) == _from_scratch(policy)
    assert sum(reviewed for _, reviewed in _shown(page).values()) == runs * items * 3 // 2


def _finish(run: LabelingRun) -> None:
    LabelingRun.objects.filter(pk=run.pk).update(status=LabelingRun.Status.SUCCEEDED, finished_at=timezone.now())


@pytest.mark.parametrize("runs", [1, 4])
def test_the_version_and_trends_pages_read_their_runs_figures_in_the_same_queries(
    runs, review_items, policy, owner, client_for, django_assert_max_num_queries, no_inline
):
    finished = [review_items(3) for _ in range(runs)]
    for run in finished:
        _finish(run)
    client = client_for(owner)
    urls = (f"/policies/{policy.slug}/v1/", f"/policies/{policy.slug}/trends/")
    for url in urls:
        client.get(url)  # the first view computes the kept figures
    with django_assert_max_num_queries(8):  # was 7 + one per run
        page = client.get(urls[0]).content.decode()
    assert all(f'href="/runs/{run.pk}/"' in page for run in finished)  # each run's rates, from its kept figures
    with django_assert_max_num_queries(14):  # was 12 + two per run
        assert client.get(urls[1]).status_code == 200
    assert FiguresSnapshot.objects.filter(kind=FiguresSnapshot.Kind.RUN_PAGE).count() == runs


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_refreshes_the_editors_counts_after_a_review_commits(
    review_items, make_user, owner, client_for, policy, tmp_path, no_inline
):
    a = make_user("ann_a", roles.ANNOTATOR)
    run = review_items(3)
    _cite(run)
    assert rule_overrides(policy=policy).counts == {}  # computed before any review
    snapshot = FiguresSnapshot.objects.get(kind=FiguresSnapshot.Kind.VERSION_RULES)
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url()).start()
    try:
        while (item := review_claim_next(user=a, run_id=run.pk)) is not None:
            review_submit(user=a, candidate_id=item.pk, label="partial_match")
        worker.wait_for(
            lambda: not (kept := FiguresSnapshot.objects.get(pk=snapshot.pk)).stale and kept.figures["size"] == 3,
            "the worker to refresh the editor's counts",
        )
    finally:
        worker.stop()
    page = _editor(client_for(owner), policy)
    assert _shown(page) == _from_scratch(policy) == {"R1": (1, 1), "R2": (2, 2), "R3": (2, 2)}
    assert "being computed" not in page
