"""Student pages: upload with CSRF (imported on a worker: the page shows pending, then the report), the report with
its lineage and leakage warning, queueing from the page, bad files shown by line and field (escaped) on the failed
evaluation, the export page's list of students, and who may see what."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from labeling.models import Candidate, StudentEvaluation
from tests.labeling.students.conftest import csv_text, do_import, teacher_labels, work_off


def _file(export, wrong=3, name="preds.csv"):
    teacher = teacher_labels(export)
    rows = []
    for n, (pair_id, label) in enumerate(sorted(teacher.items(), reverse=True)):  # the last pairs: teacher-approved
        off = n < wrong
        rows.append({"pair_id": pair_id, "label": "strong_match" if off else label,
                     "p_strong_match": 0.6 if off else 0.1, "p_no_match": 0.4 if off else 0.9})  # fmt: skip
    columns = ["pair_id", "label", "p_strong_match", "p_partial_match", "p_no_match"]
    return SimpleUploadedFile(name, csv_text(rows, columns).encode(), content_type="text/csv")


def _csrf_client(user) -> Client:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    return browser


def _token(browser, url) -> str:
    browser.get(url)
    return browser.cookies["csrftoken"].value


def test_an_ml_engineer_uploads_predictions_and_reads_the_report(student_export, engineer):
    browser = _csrf_client(engineer)
    url = reverse("student_list")
    data = {"export": student_export.pk, "student_name": "<b>tiny</b>", "student_version": "v1",
            "file": _file(student_export)}  # fmt: skip
    assert browser.post(url, data).status_code == 403  # no CSRF token
    data["file"] = _file(student_export)
    response = browser.post(url, {**data, "csrfmiddlewaretoken": _token(browser, url)})
    evaluation = StudentEvaluation.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("student_detail", args=[evaluation.pk])
    waiting = browser.get(response["Location"]).content.decode()
    assert "Waiting for a worker" in waiting and 'id="student-figures"' not in waiting
    assert f'hx-get="{response["Location"]}"' in waiting  # the page polls itself until the import is done
    assert "queued as student evaluation" in waiting
    work_off()
    polled = browser.get(response["Location"], HTTP_HX_REQUEST="true")
    assert polled["HX-Refresh"] == "true"  # ready: the whole report is loaded
    page = browser.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "&lt;b&gt;tiny&lt;/b&gt;" in html and "<b>tiny</b>" not in html
    version = student_export.policy_version
    assert reverse("export_detail", args=[student_export.pk]) in html
    assert reverse("version_detail", args=[version.policy.slug, version.number]) in html
    for run in student_export.runs.all():
        assert reverse("run_detail", args=[run.pk]) in html
    assert 'id="leakage-warning"' in html and f"{evaluation.in_train} of the 60 predicted pairs" in html
    assert 'data-truth="teacher"' in html and 'id="student-figures"' in html
    assert "0.950" in html  # 57 of 60 right against the teacher
    assert "Expected calibration error" in html

    # the export's page lists the student
    export_page = browser.get(reverse("export_detail", args=[student_export.pk])).content.decode()
    assert reverse("student_detail", args=[evaluation.pk]) in export_page
    assert "&lt;b&gt;tiny&lt;/b&gt;" in export_page


def test_queue_from_the_page_needs_csrf_and_says_what_it_did(student_export, engineer):
    evaluation = do_import(engineer, student_export, _file(student_export).read().decode()).evaluation
    browser = _csrf_client(engineer)
    detail = reverse("student_detail", args=[evaluation.pk])
    queue = reverse("student_queue", args=[evaluation.pk])
    assert browser.post(queue, {"against": "teacher"}).status_code == 403
    response = browser.post(queue, {"against": "teacher", "csrfmiddlewaretoken": _token(browser, detail)}, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 disagreements with the teacher: 3 queued for review" in html, html[html.find("<main") :][:600]
    assert Candidate.objects.filter(reason_student_disagreement=True, review_state="pending").count() == 3
    bad = browser.post(queue, {"against": "mood", "csrfmiddlewaretoken": _token(browser, detail)}, follow=True)
    assert "against must be one of" in bad.content.decode()


def test_a_bad_file_lists_its_rows_escaped_and_imports_nothing(student_export, engineer, client):
    client.force_login(engineer)
    pair_id = min(teacher_labels(student_export))
    text = f"pair_id,label\n{pair_id},<script>alert(1)</script>\n999999,no_match\n"
    upload = SimpleUploadedFile("bad.csv", text.encode())
    response = client.post(reverse("student_list"), {"export": student_export.pk, "student_name": "s",
                                                     "student_version": "1", "file": upload})  # fmt: skip
    work_off()
    evaluation = StudentEvaluation.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("student_detail", args=[evaluation.pk])
    html = client.get(reverse("student_detail", args=[evaluation.pk])).content.decode()
    assert evaluation.status == "failed" and not evaluation.predictions.exists()
    assert "2 bad rows: nothing was imported" in html and 'id="student-figures"' not in html
    assert "&lt;script&gt;" in html and "<script>alert" not in html
    assert "unknown pair id 999999" in html
    assert "failed" in client.get(reverse("student_list")).content.decode()
    unknown = client.post(reverse("student_list"), {"export": student_export.pk, "student_name": "s",
                                                    "student_version": "2",
                                                    "file": SimpleUploadedFile("p.xlsx", b"x")})  # fmt: skip
    assert unknown.status_code == 400 and "unknown format" in unknown.content.decode()


@pytest.mark.parametrize("role", ["annotator", "nobody"])
def test_annotators_and_people_without_a_role_get_403(student_export, engineer, request, client, role):
    evaluation = do_import(engineer, student_export, _file(student_export).read().decode()).evaluation
    client.force_login(request.getfixturevalue(role))
    for url in (reverse("student_list"), reverse("student_detail", args=[evaluation.pk])):
        assert client.get(url).status_code == 403
    assert client.post(reverse("student_queue", args=[evaluation.pk]), {"against": "teacher"}).status_code == 403
    assert not Candidate.objects.filter(reason_student_disagreement=True).exists()


def test_policy_owners_may_read_and_anonymous_users_log_in_first(student_export, engineer, owner, client):
    evaluation = do_import(engineer, student_export, _file(student_export).read().decode()).evaluation
    detail = reverse("student_detail", args=[evaluation.pk])
    response = client.get(detail)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(owner)
    assert client.get(detail).status_code == 200
    assert client.get(reverse("student_list")).status_code == 200
    assert client.get(reverse("student_detail", args=[evaluation.pk + 99])).status_code == 404
