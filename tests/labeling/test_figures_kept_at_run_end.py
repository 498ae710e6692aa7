"""A run that ends has its page's figures (counts, trust rates, timeline) computed by a worker, not by its first
viewer: at a million candidates that first view scanned them all (seconds). The watchdog computes those of a run
whose message was lost."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import FiguresSnapshot, LabelingRun
from labeling.selectors.runs import run_page_figures
from labeling.services import figures_keep_ended, figures_keep_run, import_file, labeling_run_create
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

from .conftest import answer

PAIRS = 12


def _kept(run) -> FiguresSnapshot | None:
    return FiguresSnapshot.objects.filter(kind=FiguresSnapshot.Kind.RUN_PAGE, run=run).first()


def _import(kind: str, header: str, rows: list[str]) -> None:
    data = ("\n".join([header, *rows]) + "\n").encode()
    assert import_file(kind=kind, stream=io.BytesIO(data), name=f"{kind}.csv").ok


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_run_that_ends_on_a_worker_has_its_page_figures_before_anyone_looks(
    policy, make_config, owner, client_for, tmp_path
):
    _import("members", "member_id,headline,skills", [f"m{i},Engineer {i},Python" for i in range(PAIRS)])
    _import("jobs", "job_id,title,description", ["j1,Data engineer,Pipelines"])
    _import("pairs", "member_id,job_id", [f"m{i},j1" for i in range(PAIRS)])
    purge_queue()
    with FakeOpenAI() as server:
        server.responder = answer("strong_match")
        config = make_config(base_url=server.base_url, request_timeout=10)
        worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"}).start()
        try:
            run = labeling_run_create(
                version=policy.versions.get(number=1), config=config, selection={"all": True}, chunk_size=5
            )
            worker.wait_for(lambda: _kept(run) is not None, "the ended run's page figures")
        finally:
            worker.stop()
    run.refresh_from_db()
    assert run.status == LabelingRun.Status.SUCCEEDED
    kept = _kept(run)
    assert not kept.stale and kept.figures == run_page_figures(run=run)  # exact: what a scan gives now
    assert kept.figures["size"] == PAIRS

    page = client_for(owner).get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-figures-computed"' in page
    assert _kept(run).computed_at == kept.computed_at  # the page read them; it did not compute them


def test_the_watchdog_computes_the_figures_of_a_run_that_ended_lately_without_them(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.responder = answer("no_match")
    ended = process_run(labeling_run_create(version=published, config=openai_config(), selection={"all": True}))
    # its message to the workers is never sent here (this test's transaction never commits): as if it were lost
    assert ended.status == LabelingRun.Status.SUCCEEDED and _kept(ended) is None
    old = process_run(labeling_run_create(version=published, config=openai_config("b"), selection={"all": True}))
    LabelingRun.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=2))
    active = labeling_run_create(version=published, config=openai_config("c"), selection={"all": True})

    assert figures_keep_ended() == 1  # the one that ended lately: not the old one (its first view will), nor the active
    assert figures_keep_run(run_id=ended.pk) is True
    assert _kept(ended).figures == run_page_figures(run=ended)
    assert figures_keep_ended() == 0
    assert figures_keep_run(run_id=ended.pk) is False  # already kept: nothing computed again
    assert figures_keep_run(run_id=active.pk) is False and _kept(active) is None  # an active run is read live
