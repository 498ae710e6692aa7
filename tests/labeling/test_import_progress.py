"""A long import shows how many rows it has read while it runs (its data stays invisible until it commits)."""

import io
import threading
import time

import pytest
from django.db import connection

from labeling.models import ImportBatch, Member
from labeling.services import import_file
from labeling.services import imports as import_services

ROWS = 60_000


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_rows_read_so_far_are_published_while_the_import_runs(monkeypatch):
    monkeypatch.setattr(import_services, "PROGRESS_SECONDS", 0.05)
    data = "member_id,headline\n" + "".join(f"m{i},Engineer {i}\n" for i in range(ROWS))
    observed: list[tuple[int, int]] = []
    done = threading.Event()

    def observe():  # another user looking at the import page, on its own connection
        try:
            while not done.is_set():
                row = ImportBatch.objects.filter(status="running").values_list("rows_seen", flat=True).first()
                if row is not None:
                    observed.append((row, Member.objects.count()))
                time.sleep(0.02)
        finally:
            connection.close()

    observer = threading.Thread(target=observe)
    observer.start()
    try:
        result = import_file(kind="members", stream=io.BytesIO(data.encode()), name="big.csv")
    finally:
        done.set()
        observer.join()
    assert result.ok and result.batch.rows_created == ROWS
    partial = [(seen, members) for seen, members in observed if 0 < seen < ROWS]
    assert partial, f"no intermediate progress observed: {observed[:5]}…"
    assert all(members == 0 for _, members in partial)  # nothing is visible before the import commits
