"""An ML engineer creates an export in the browser, watches a real Celery worker build it, opens the dataset card and
downloads the Parquet file, which the test reads back with pyarrow.

The labelled data (a heuristic run, three human reviews) is made in-process before the browser starts; the worker
subprocess builds into the same exports folder the live server serves from.
"""

import re

import pyarrow.parquet as pq
import pytest
from playwright.sync_api import expect

from labeling.models import Candidate
from policyhub import roles
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.exports.conftest import export_run  # noqa: F401 - the data this journey exports
from tests.labeling.conftest import process_run, published  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_engineer_creates_watches_and_downloads_an_export(export_run, page, login, make_user, settings, tmp_path):  # noqa: F811
    engineer = make_user("mila", roles.ML_ENGINEER)
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(),
                    env={"POLICYHUB_EXPORTS_DIR": str(settings.EXPORTS_ROOT)})  # fmt: skip
    try:
        worker.start()
        login(engineer)
        page.get_by_role("link", name="Exports", exact=True).click()
        page.get_by_role("link", name="New export").click()
        page.select_option("#id_version", label=str(export_run.policy_version))
        page.get_by_label(re.compile(rf"Run #{export_run.pk} ·")).check()
        page.fill("#id_seed", "21")
        page.get_by_role("button", name="Create export").click()
        page.wait_for_url(re.compile(r"/exports/\d+/$"))
        expect(page.locator(".messages")).to_contain_text("is building")
        # htmx polls the status until the worker is done, then the page reloads once with the card and the files
        expect(page.locator('#export-status [data-status="ready"]')).to_be_visible(timeout=60_000)
        expect(page.locator("#export-status")).not_to_have_attribute("hx-get", re.compile(".*"))
        card = page.locator("#dataset-card")
        expect(card.locator("h1")).to_contain_text(f"Dataset: {export_run.policy_version.policy.name}")
        approved = Candidate.objects.filter(run=export_run).exclude(approved_label="")
        expect(card).to_contain_text(f"{approved.count()} rows, one per member–job pair")

        page.screenshot(path="/tmp/export_page.png", full_page=True)
        with page.expect_download() as download:
            page.locator("#export-files").get_by_role("link", name="labels.parquet").click()
        path = tmp_path / "downloaded.parquet"
        download.value.save_as(path)
        table = pq.read_table(path)
        assert table.num_rows == approved.count()
        exported = dict(zip(table.column("pair_id").to_pylist(), table.column("label").to_pylist(), strict=True))
        assert exported == dict(approved.values_list("pair_id", "approved_label"))
        assert set(table.column("split").to_pylist()) <= {"train", "validation", "test"}
        assert page.js_errors == []
    finally:
        worker.stop()
