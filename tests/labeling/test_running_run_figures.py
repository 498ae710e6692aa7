"""A large run's page while it runs (issue 15, pages at a million candidates): its counts, trust rates and
timeline are kept from its start and counted again on a worker every few seconds while it writes answers, not on
every view (a million-candidate run's page took 2.2 s, polled every 2 s, and its version page and trends too);
they are exact as of the time shown, and exact when it ends. A small running run is still counted on every view.
"""

import io
import time

import pytest
from django.utils import timezone

from labeling.models import FiguresSnapshot, LabelingRun
from labeling.selectors.runs import run_page_figures
from labeling.services import figures, figures_refresh, import_file, labeling_run_cancel, labeling_run_create
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

from .conftest import answer


@pytest.fixture
def large(monkeypatch):
    """Every run counts as large: its page's figures are kept while it runs, and counted again on a worker only."""
    monkeypatch.setattr(figures, "LIVE_RUN_BELOW", 1)
    monkeypatch.setattr(figures, "INLINE_REFRESH_BELOW", 0)


def _kept(run) -> FiguresSnapshot | None:
    return FiguresSnapshot.objects.filter(kind=FiguresSnapshot.Kind.RUN_PAGE, run=run).first()


def _import(n: int) -> None:
    for kind, header, rows in [
        ("members", "member_id,headline,skills", [f"m{i},Engineer {i},Python" for i in range(n)]),
        ("jobs", "job_id,title,description", ["j1,Data engineer,Pipelines"]),
        ("pairs", "member_id,job_id", [f"m{i},j1" for i in range(n)]),
    ]:
        data = ("\n".join([header, *rows]) + "\n").encode()
        assert import_file(kind=kind, stream=io.BytesIO(data), name=f"{kind}.csv").ok


@pytest.mark.parametrize("n", [3, 60])
def test_a_large_running_runs_pages_read_kept_figures_in_the_same_queries_at_any_size(
    n, large, review_items, engineer, owner, client_for, django_assert_max_num_queries
):
    run = review_items(n)  # running, its candidates decided and waiting for review
    assert run.status == LabelingRun.Status.RUNNING
    kept = _kept(run)
    assert kept is not None and kept.figures["summary"]["pending"] == n  # kept from its start: all pending then
    figures.figures_mark_stale(run_ids=[run.pk], kinds=figures.RUN_PAGE)  # the fixture decided them behind its back
    assert figures_refresh(snapshot_id=kept.pk)

    client = client_for(engineer)
    with django_assert_max_num_queries(20):
        page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-figures-as-of"' in page and 'id="run-figures-computed"' not in page
    assert f'<td id="count-review">{n}</td>' in page
    with django_assert_max_num_queries(14):
        out = client.get(f"/api/runs/{run.pk}").json()
    assert out["routing"]["needs_review"] == n and out["routing"]["pending"] == 0
    assert out["figures_computed_at"] is not None and out["figures_stale"] is False
    slug = run.policy_version.policy.slug
    owner_client = client_for(owner)
    for url in (f"/policies/{slug}/v{run.policy_version.number}/", f"/policies/{slug}/trends/"):
        with django_assert_max_num_queries(40):
            assert owner_client.get(url).status_code == 200


def test_a_small_running_run_is_counted_on_every_view(review_items, engineer, client_for):
    run = review_items(3)
    assert _kept(run) is None
    out = client_for(engineer).get(f"/api/runs/{run.pk}").json()
    assert out["routing"]["needs_review"] == 3 and out["figures_computed_at"] is None  # live: what was just written
    assert 'id="run-figures-as-of"' not in client_for(engineer).get(f"/runs/{run.pk}/").content.decode()


def test_a_running_runs_figures_are_counted_again_only_once_they_are_due(large, review_items, settings, monkeypatch):
    settings.RUN_FIGURES_REFRESH_SECONDS = 10
    queued = []
    monkeypatch.setattr(figures, "enqueue", lambda task, pk, countdown: queued.append((pk, countdown)))
    monkeypatch.setattr(figures, "enqueue_each", lambda task, calls: queued.extend((pk, 0) for (pk,) in calls))
    run = review_items(2)
    kept = _kept(run)

    def mark(**state) -> list:
        FiguresSnapshot.objects.filter(pk=kept.pk).update(**state)
        queued.clear()
        figures.figures_mark_stale(run_ids=[run.pk], kinds=figures.RUN_PAGE)
        return list(queued)

    ((pk, wait),) = mark()  # counted at the run's start, a moment ago: due in about 10 s
    assert pk == kept.pk and 9 < wait <= 10
    assert mark() == []  # already stale, its refresh on its way: not queued twice
    assert mark(stale=False, computed_at=timezone.now() - timezone.timedelta(seconds=60)) == [(kept.pk, 0)]
    ((_, wait),) = mark(stale=False, computed_at=timezone.now() - timezone.timedelta(seconds=2), seconds=5.0)
    assert 17 < wait <= 18  # counting took 5 s: the next waits four times as long, not 10 s
    LabelingRun.objects.filter(pk=run.pk).update(status=LabelingRun.Status.SUCCEEDED, finished_at=timezone.now())
    assert mark(stale=False, computed_at=timezone.now()) == [(kept.pk, 0)]  # ended: its final figures at once


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_large_run_shows_figures_counted_again_while_it_runs_and_exact_ones_when_it_ends(
    policy, make_config, engineer, client_for, tmp_path, large
):
    pairs = 40
    _import(pairs)
    purge_queue()
    client = client_for(engineer)
    seen = []  # (figures_computed_at, pending) read through the API while the run ran
    with FakeOpenAI(latency=0.2) as server:
        server.responder = answer("strong_match")
        config = make_config(base_url=server.base_url, concurrency=1, request_timeout=10)
        env = {"OPENAI_API_KEY": "test", "RUN_FIGURES_REFRESH_SECONDS": "1"}
        worker = Worker(tmp_path, database_url=worker_database_url(), env=env).start()
        try:
            run = labeling_run_create(
                version=policy.versions.get(number=1), config=config, selection={"all": True}, chunk_size=5
            )
            while True:
                out = client.get(f"/api/runs/{run.pk}").json()
                if out["status"] != "running":
                    break
                seen.append((out["figures_computed_at"], out["routing"]["pending"]))
                assert 'id="run-figures-as-of"' in client.get(f"/runs/{run.pk}/").content.decode()
                worker.check_alive()
                time.sleep(0.25)
            run.refresh_from_db()
            worker.wait_for(
                lambda: (k := _kept(run)) and not k.stale and k.computed_at >= run.finished_at, "the final figures"
            )
        finally:
            worker.stop()
    assert run.status == LabelingRun.Status.SUCCEEDED
    assert all(at is not None for at, _ in seen)  # never counted by the view
    counts = dict(seen)  # computed_at → pending, in the order seen
    times = sorted(timezone.datetime.fromisoformat(at) for at in counts)
    assert len(times) >= 3, seen  # counted again while it ran...
    assert any(0 < pending < pairs for pending in counts.values()), seen  # ...showing its progress
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.95, (gaps, seen)  # at most once a second
    kept = _kept(run)
    assert kept.figures == run_page_figures(run=run) and kept.figures["summary"]["labeled"] == pairs
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-figures-computed"' in page and 'id="run-figures-as-of"' not in page


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_answers_stored_by_a_worker_killed_mid_chunk_are_in_the_kept_figures(
    policy, make_config, engineer, client_for, tmp_path, large
):
    """The chunk never ends (its worker is killed, then the run is cancelled), yet the answers it stored are
    counted: each write of answers marks the figures stale, not only a chunk's end."""
    pairs = 20
    _import(pairs)
    purge_queue()
    env = {"OPENAI_API_KEY": "test", "RUN_FIGURES_REFRESH_SECONDS": "1", "CELERY_VISIBILITY_TIMEOUT": "3"}
    with FakeOpenAI(latency=0.25) as server:
        server.responder = answer("strong_match")
        config = make_config(base_url=server.base_url, concurrency=1, request_timeout=10)
        first = Worker(tmp_path, database_url=worker_database_url(), env=env).start()
        second = Worker(tmp_path, database_url=worker_database_url(), env=env)
        try:
            run = labeling_run_create(
                version=policy.versions.get(number=1), config=config, selection={"all": True}, chunk_size=pairs
            )
            first.wait_for(lambda: LabelingRun.objects.get(pk=run.pk).samples_done > 0, "a first write of answers")
            first.kill()
            stored = LabelingRun.objects.get(pk=run.pk).samples_done
            assert 0 < stored < pairs
            labeling_run_cancel(run=run)
            assert _kept(run).stale and _kept(run).figures["summary"]["labeled"] < stored
            page = client_for(engineer).get(f"/runs/{run.pk}/").content.decode()
            assert "changed since: updated figures are being computed" in page
            second.start()
            second.wait_for(lambda: not _kept(run).stale, "the kept figures to be counted again")
        finally:
            first.stop()
            second.stop()
    kept = _kept(run)
    assert kept.figures == run_page_figures(run=run)
    assert kept.figures["summary"]["labeled"] == stored and kept.figures["summary"]["pending"] == pairs - stored
