"""The students API: upload (202 and a URL to poll, idempotent; bad rows on the failed evaluation), list, report
with figures, queue; token auth and roles; the endpoints are in the OpenAPI document. The uploads are imported
here by :func:`work_off` in the test's process; test_student_worker.py runs a real worker."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.models import Candidate, StudentEvaluation, StudentPrediction
from policyhub import services as policy_services
from tests.labeling.students.conftest import csv_text, teacher_labels, work_off


def _auth(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {policy_services.api_token_create(user=user, name='t').raw}"}


def _predictions(export, wrong=4) -> bytes:
    teacher = teacher_labels(export)
    rows = []
    for n, (pair_id, label) in enumerate(sorted(teacher.items(), reverse=True)):
        off = n < wrong
        rows.append({"pair_id": pair_id, "label": "strong_match" if off else label,
                     "p_strong_match": 0.7 if off else 0.0, "p_no_match": 0.3 if off else 1.0})  # fmt: skip
    return csv_text(rows, ["pair_id", "label", "p_strong_match", "p_partial_match", "p_no_match"]).encode()


def _upload(client, auth, export, data: bytes, name="preds.csv", version="1", **headers):
    body = {"export": export.pk, "student_name": "tiny", "student_version": version,
            "file": io.BytesIO(data)}  # fmt: skip
    body["file"].name = name
    return client.post("/api/students", body, **auth, **headers)


def test_upload_read_list_and_queue_with_a_token(student_export, engineer, client):
    auth = _auth(engineer)
    created = _upload(client, auth, student_export, _predictions(student_export), HTTP_IDEMPOTENCY_KEY="s-1")
    assert created.status_code == 202, created.content
    body = created.json()
    assert (body["status"], body["rows"], body["url"]) == ("pending", 0, f"/api/students/{body['id']}")
    assert body["purpose"] == "student_eval" and body["export"] == student_export.pk
    assert body["runs"] == sorted(student_export.runs.values_list("pk", flat=True))
    waiting = client.get(body["url"], **auth).json()
    assert (waiting["status"], waiting["figures"], waiting["disagreements"]) == ("pending", {}, {})
    queue_early = client.post(f"{body['url']}/queue", {}, content_type="application/json", **auth)
    assert queue_early.status_code == 409 and "pending" in queue_early.json()["detail"]
    again = _upload(client, auth, student_export, _predictions(student_export), HTTP_IDEMPOTENCY_KEY="s-1")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert StudentEvaluation.objects.count() == 1
    work_off()

    report = client.get(body["url"], **auth).json()
    assert (report["status"], report["rows"], report["rows_seen"], report["errors"]) == ("ready", 60, 60, [])
    teacher = report["figures"]["comparisons"]["teacher"]
    assert (teacher["n"], teacher["correct"]) == (60, 56) and teacher["accuracy"] == pytest.approx(56 / 60)
    assert teacher["calibration"]["n"] == 60 and teacher["calibration"]["ece"] is not None
    assert report["disagreements"]["teacher"] == 4
    assert report["leakage"] is (report["in_train"] > 0)
    assert bool(report["warnings"]) is report["leakage"]
    assert client.get(f"/api/students/{body['id']}?precision=2", **auth).status_code == 400

    listed = client.get(f"/api/students?export={student_export.pk}", **auth).json()
    assert [s["id"] for s in listed] == [body["id"]]

    queued = client.post(f"/api/students/{body['id']}/queue", {"against": "teacher", "limit": 3},
                         content_type="application/json", **auth)  # fmt: skip
    assert queued.status_code == 200 and queued.json()["queued"] == 3
    assert Candidate.objects.filter(reason_student_disagreement=True).count() == 3
    bad = client.post(f"/api/students/{body['id']}/queue", {"against": "mood"}, content_type="application/json", **auth)
    assert bad.status_code == 400 and "against" in bad.json()["detail"]


def test_bad_rows_fail_the_evaluation_with_line_and_field(student_export, engineer, client):
    auth = _auth(engineer)
    response = _upload(client, auth, student_export, b"pair_id,label\n999999,maybe\n")
    assert response.status_code == 202
    work_off()
    body = client.get(response.json()["url"], **auth).json()
    assert (body["status"], body["error_count"], body["rows"], body["figures"]) == ("failed", 2, 0, {})
    assert {(e["line"], e["field"]) for e in body["errors"]} == {(2, "label"), (2, "pair_id")}
    assert not StudentPrediction.objects.exists()
    retry = _upload(client, auth, student_export, _predictions(student_export))  # the same version, fixed
    assert retry.status_code == 202 and StudentEvaluation.objects.get().pk == retry.json()["id"]
    unknown = _upload(client, auth, student_export, b"whatever", name="p.xlsx", version="2")
    assert unknown.status_code == 400 and "unknown format" in unknown.json()["detail"]


def test_conflicts_and_missing_things(student_export, engineer, client):
    auth = _auth(engineer)
    assert _upload(client, auth, student_export, _predictions(student_export)).status_code == 202
    twice = _upload(client, auth, student_export, _predictions(student_export))
    assert twice.status_code == 409 and "already evaluated" in twice.json()["detail"]
    body = {"export": 99999, "student_name": "x", "student_version": "1", "file": io.BytesIO(b"pair_id,label\n")}
    assert client.post("/api/students", body, **auth).status_code == 404
    assert client.get("/api/students/99999", **auth).status_code == 404
    blank = _upload(client, auth, student_export, _predictions(student_export), version="  ")
    assert blank.status_code == 400 and blank.json()["errors"][0]["field"] == "student_version"


def test_annotators_and_people_without_a_role_get_403(student_export, engineer, annotator, nobody, client):
    created = _upload(client, _auth(engineer), student_export, _predictions(student_export)).json()
    client.force_login(nobody)  # no role, so no token: the browser session
    assert client.get("/api/students").status_code == 403
    assert client.get(f"/api/students/{created['id']}").status_code == 403
    client.logout()
    auth = _auth(annotator)
    assert _upload(client, auth, student_export, _predictions(student_export), version="2").status_code == 403
    assert client.get("/api/students", **auth).status_code == 403
    assert client.get(f"/api/students/{created['id']}", **auth).status_code == 403
    queue = client.post(f"/api/students/{created['id']}/queue", {}, content_type="application/json", **auth)
    assert queue.status_code == 403
    assert StudentEvaluation.objects.count() == 1


def test_policy_owners_may_use_it_and_anonymous_callers_get_401(student_export, owner, client):
    assert _upload(client, _auth(owner), student_export, _predictions(student_export)).status_code == 202
    assert client.get("/api/students").status_code == 401


def test_the_endpoints_are_documented(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    create = paths["/api/students"]["post"]
    assert {"200", "202", "400", "403", "404", "409", "413", "503"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "post" in paths["/api/students/{student_id}/queue"]
    assert "get" in paths["/api/students/{student_id}"]


def test_the_command_queues_reports_and_queues_disagreements(student_export, engineer, tmp_path, capsys):
    path = tmp_path / "preds.csv"
    path.write_bytes(_predictions(student_export))
    call_command("student", "import", str(path), "--export", str(student_export.pk), "--name", "cli",
                 "--version", "7", "--user", engineer.username, "--no-wait")  # fmt: skip
    out = capsys.readouterr().out
    evaluation = StudentEvaluation.objects.get()
    assert f"queued as student evaluation #{evaluation.pk}" in out and evaluation.status == "pending"
    work_off()
    call_command("student", "report", "--evaluation", str(evaluation.pk))
    assert "teacher: accuracy 0.933 over 60" in capsys.readouterr().out
    call_command("student", "queue", "--evaluation", str(evaluation.pk), "--user", engineer.username)
    assert "4 queued for review" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No export #99999"):
        call_command("student", "import", str(path), "--export", "99999", "--name", "cli", "--version", "8",
                     "--user", engineer.username)  # fmt: skip


def test_a_file_over_the_upload_limit_is_a_413(student_export, engineer, client, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    response = _upload(client, _auth(engineer), student_export, _predictions(student_export))
    assert response.status_code == 413
    assert "IMPORT_MAX_UPLOAD_BYTES" in response.json()["detail"] and response.json()["errors"][0]["field"] == "file"
    assert not StudentEvaluation.objects.exists()
