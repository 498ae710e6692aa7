"""An ML engineer uploads a student's predictions in the browser, watches a real Celery worker import them (the
page polls until the report is there), reads its scores and the leakage warning, and queues its disagreements with
the teacher for annotators, who then get the most confident one first.

The export (a heuristic run, three human reviews, built in-process) exists before the browser starts."""

import re

import pytest
from playwright.sync_api import expect

from labeling.models import Candidate, StudentEvaluation
from policyhub import roles
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.e2e.test_charts import chart_data
from tests.exports.conftest import export_run  # noqa: F401 - the export's data
from tests.labeling.conftest import process_run, published  # noqa: F401
from tests.labeling.students.conftest import csv_text, student_export, teacher_labels  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def rows_of(card, table: str) -> list[list[str]]:
    return card.locator(f"{table} tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.children].map(c => c.textContent.trim()))"
    )


@pytest.fixture
def worker(page, settings, tmp_path):
    """A real worker on the test database, sharing the uploads and exports folders (stopped before the browser)."""
    purge_queue()
    settings.MEDIA_ROOT = tmp_path / "media"
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "POLICYHUB_EXPORTS_DIR": str(settings.EXPORTS_ROOT)}
    started = Worker(tmp_path, database_url=worker_database_url(), env=env).start()
    yield started
    started.stop()


def test_engineer_imports_a_student_reads_its_scores_and_queues_its_disagreements(
    student_export,  # noqa: F811
    page,
    login,
    make_user,
    worker,
    tmp_path,  # noqa: F811
):
    engineer = make_user("mila", roles.ML_ENGINEER)
    teacher = teacher_labels(student_export)
    rows, wrong = [], {}
    for n, (pair_id, label) in enumerate(sorted(teacher.items(), reverse=True)):
        if n < 2:  # the last pairs were auto-accepted: the student says otherwise, the second more surely
            other = "strong_match" if label != "strong_match" else "no_match"
            wrong[pair_id] = 0.6 + 0.3 * n
            rows.append({"pair_id": pair_id, "label": other, "probs": ""} | {f"p_{other}": wrong[pair_id],
                        f"p_{label}": round(1 - wrong[pair_id], 3)})  # fmt: skip
        else:
            rows.append({"pair_id": pair_id, "label": label, f"p_{label}": 1.0})
    path = tmp_path / "student.csv"
    path.write_text(csv_text(rows, ["pair_id", "label", "p_strong_match", "p_partial_match", "p_no_match"]))

    page.set_viewport_size({"width": 1280, "height": 900})
    login(engineer)
    page.get_by_role("link", name="Students", exact=True).click()
    page.select_option("#id_export", value=str(student_export.pk))
    page.fill("#id_student_name", "distil-match")
    page.fill("#id_student_version", "2026-12-02")
    page.set_input_files("#id_file", str(path))
    page.get_by_role("button", name="Upload and score").click()
    page.wait_for_url(re.compile(r"/students/\d+/$"))
    expect(page.locator(".messages")).to_contain_text("queued as student evaluation")
    # the page polls the import and loads the report once the worker has imported the file
    expect(page.locator("#student-lineage")).to_contain_text("of 60 predictions", timeout=30_000)
    expect(page.locator("#student-lineage")).to_contain_text(f"export #{student_export.pk}")
    teacher_card = page.locator('[data-truth="teacher"]')
    expect(teacher_card.locator('[data-value="accuracy"]')).to_have_text("0.967")  # 58 of 60
    expect(teacher_card).to_contain_text("Expected calibration error")
    # the pictures hold the figures the cards state: the confusion matrix cell by cell, the reliability bins
    confusion = chart_data(page, "student-teacher-confusion")
    labels = teacher_card.locator("table.confusion thead th.mono").all_text_contents()
    stated = {
        (row[0], labels[k]): int(n) for row in rows_of(teacher_card, "table.confusion") for k, n in enumerate(row[1:])
    }
    assert {(v["truth"], v["predicted"]): v["items"] for v in confusion} == stated and sum(stated.values()) == 60
    reliability = chart_data(page, "student-teacher-reliability")
    bins = rows_of(teacher_card, '[data-metric="reliability"]')
    assert [[f"{v['low']:.1f}–{v['high']:.1f}", str(v["items"]), f"{v['confidence']:.3f}", f"{v['accuracy']:.3f}"]
            for v in reliability] == [row[:4] for row in bins] and bins  # fmt: skip
    evaluation = StudentEvaluation.objects.get()
    if evaluation.in_train:
        expect(page.locator("#leakage-warning")).to_contain_text(f"{evaluation.in_train} of the 60 predicted pairs")
    expect(page.locator('#student-disagreements [data-value="vs-teacher"]')).to_have_text("2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # four reports side by side do not widen it

    page.select_option("select[name=against]", "teacher")
    page.get_by_role("button", name="Queue for annotators").click()
    expect(page.locator(".messages")).to_contain_text("2 disagreements with the teacher: 2 queued for review")
    assert page.js_errors == []

    queued = Candidate.objects.filter(reason_student_disagreement=True, review_state="pending")
    assert set(queued.values_list("pair_id", flat=True)) == set(wrong)
    # the annotator filters the queue by the reason and gets the student's most confident disagreement first
    annotator = make_user("ravi", roles.ANNOTATOR)
    page.get_by_role("button", name="Log out").click()
    login(annotator)
    page.goto("/review/?reason=student_disagreement")
    first = max(wrong, key=wrong.get)
    expect(page.locator("body")).to_contain_text("A student model trained on an export of these labels")
    held = Candidate.objects.get(claimed_by=annotator)
    assert held.pair_id == first
