"""The whole JSON API, fuzzed from its own OpenAPI document (Schemathesis) as each role: whatever a caller sends,
no operation answers 500, every answer's status is one the document lists for it, and its body matches the schema
documented for that status; a request the schema forbids is refused. Anonymous callers get nothing but 401/403/404.

Cases are generated from ``/api/openapi.json`` with a fixed seed, derandomised, a bounded number per operation, so
a run is repeatable. They mix values the schema allows, values it forbids, and (where an operation has path
parameters) the ids of real rows: a published policy with a draft, a finished run with candidates, one reviewed, an
import, a finished export, a student evaluated on it; each role must get 200s from some of them, so the endpoints
do more than answer 404.
Requests go through Django's test handler in this process and this test's transaction, so nothing they write
outlives it and work they enqueue (after commit) never starts. Run just this:
``bin/test tests/policyhub/test_api_fuzz.py``.
"""

import io
import traceback

import pytest
import schemathesis
from django.core.signals import got_request_exception
from django.test.client import ClientHandler
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from exports import services as export_services
from labeling.models import Candidate, GoldLabel, TeacherConfig
from labeling.services import (
    draft_preview_start,
    import_file,
    labeling_run_create,
    review_claim_next,
    review_submit,
)
from labeling.services.feedback import feedback_create, feedback_dismiss, feedback_reopen
from labeling.services.redteam import red_team_run_start, red_team_set_create
from labeling.services.students import student_evaluation_import
from policyhub import services
from tests.labeling.conftest import process_run, published  # noqa: F401 - fixtures the data builds on

SEED = 20261202
EXAMPLES_PER_OPERATION = 15
#: No 5xx; a documented status with a body that matches its schema; a request the schema forbids is refused (4xx).
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, negative_data_rejection]
#: Label Studio is not configured here (the ``labelstudio`` tests run a real one), so push and pull answer their
#: documented 503 "not configured", which ``not_a_server_error`` would count as a crash; their status and body are
#: still checked against the document.
NO_LABEL_STUDIO = {"POST /api/runs/{run_id}/labelstudio/push", "POST /api/runs/{run_id}/labelstudio/pull"}
ROLES = ["anonymous", "annotator", "policy_owner", "ml_engineer", "staff"]
#: Bodies naming the real rows, for the operations that start something (headers and the rest still vary).
_RUN = {"policy": "match", "version": 1, "teacher": "baseline"}
REAL_BODIES = {
    "POST /api/runs/plan": _RUN,
    "POST /api/runs": _RUN,
    "POST /api/exports": {"policy": "match", "version": 1},
    "POST /api/teachers": {"name": "fuzzed", "provider": "heuristic"},
    "POST /api/policies": {"slug": "fuzzed", "name": "Fuzzed", "task_description": "Does it fit?"},
    "POST /api/policies/{slug}/gold/scores": {"version": 1, "teacher": "baseline"},
    "POST /api/policies/{slug}/previews": {"teacher": "baseline"},
}
#: Operations each role must get a 200 from on the real rows: proof that the data is reachable as that role.
READS_DATA = {
    "anonymous": set(),
    "annotator": {
        "GET /api/policies/{slug}/versions/{number}/prompt",
        "GET /api/policies/{slug}/versions/{number}/gates",
    },
    "policy_owner": {
        "GET /api/policies/{slug}/versions/{number}",
        "GET /api/runs/{run_id}/agreement",
        "GET /api/feedback/{feedback_id}",
        "GET /api/redteam/runs/{red_team_run_id}/compare/{other_id}",
        "GET /api/policies/{slug}/gold",
        "GET /api/policies/{slug}/previews/{preview_id}",
        "GET /api/policies/{slug}/draft/relabel",
    },
    "ml_engineer": {
        "GET /api/runs/{run_id}/candidates",
        "GET /api/exports/{export_id}/files/{name}",
        "GET /api/redteam/runs/{red_team_run_id}/report",
        "GET /api/redteam/sets/{red_team_set_id}",
        "GET /api/teachers",
        "GET /api/policies/{slug}/gold/scores/{run_id}",
    },
    "staff": {"GET /api/imports/{batch_id}", "GET /api/exports/{export_id}/manifest"},
}


class DjangoTestApp:
    """Django as a WSGI application for Schemathesis, through the test client's handler: requests share the test's
    database connection and transaction (the real WSGI handler would close the connection after each request), and
    every exception a view raises is kept so a 500 comes with its traceback."""

    def __init__(self):
        self.handler = ClientHandler(enforce_csrf_checks=True)
        self.errors: list[str] = []

    def _record(self, sender, request=None, **kwargs):
        self.errors.append(f"{request.method} {request.get_full_path()}\n{traceback.format_exc()}")

    def __call__(self, environ, start_response):
        got_request_exception.connect(self._record)
        try:
            response = self.handler(environ)
        finally:
            got_request_exception.disconnect(self._record)
        headers = [*response.items(), *(("Set-Cookie", c.output(header="").strip()) for c in response.cookies.values())]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return response.streaming_content if response.streaming else [response.content]


def _import(kind: str, text: str, name: str):
    result = import_file(kind=kind, stream=io.BytesIO(text.encode()), name=name)
    assert result.ok, result
    return result.batch


@pytest.fixture
def api_data(published, process_run, owner, annotator, engineer, settings, tmp_path):  # noqa: F811
    """Real rows for the path parameters: the policy ``match`` (published v1, draft v2), a finished heuristic run
    over 6 pairs with one needs-review item the annotator reviewed (so there is a review to undo), the import of
    those pairs, a finished export of the run, the annotator's policy-feedback flag on the reviewed item (dismissed
    and reopened: open, with a history), a finished red-team run of v1 on a set of 2 of those pairs, a gold label
    (of another pair) and a preview of the draft on it, and a student's predictions on the export."""
    settings.EXPORTS_ROOT = tmp_path / "exports"
    _import("members", "member_id,headline,skills\nm1,Data engineer,python\nm2,Nurse,nursing\n", "fm.csv")
    _import("jobs", "job_id,title,description\nj1,Engineer,Python\nj2,Nurse,ICU\nj3,Designer,Figma\n", "fj.csv")
    pair_rows = "".join(f"m{i},j{k}\n" for i in (1, 2) for k in (1, 2, 3))
    pairs = _import("pairs", "member_id,job_id\n" + pair_rows, "fp.csv")
    config = TeacherConfig.objects.create(name="baseline", provider="heuristic")
    run = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    item = Candidate.objects.filter(run=run).order_by("id").first()
    Candidate.objects.filter(pk=item.pk).update(
        routing="needs_review", reason_low_confidence=True, review_state="pending", reviews_needed=1,
        approved_label="", approved_by="", approved_at=None,
    )  # fmt: skip
    claimed = review_claim_next(user=annotator, run_id=run.pk)
    review_submit(user=annotator, candidate_id=claimed.pk, label="no_match", note="fuzz fixture")
    feedback, _ = feedback_create(
        user=annotator, candidate_id=claimed.pk, kind="unclear_rule", rule_ids=["R1"], note="fuzz fixture"
    )
    feedback_dismiss(user=owner, feedback_id=feedback.pk, reason="fuzz fixture")  # open again, with a history
    feedback_reopen(user=owner, feedback_id=feedback.pk, reason="fuzz fixture")
    export, _ = export_services.export_create(
        user=engineer, version=published, runs=[run], filters={}, split={}, idempotency_key=""
    )
    export = export_services.export_build(export_id=export.pk)
    assert export.is_ready, export.error
    red_team_set = red_team_set_create(user=owner, policy=published.policy, name="fuzz", seed=1, sample_size=2,
                                       categories=["injection", "protected_attribute"])  # fmt: skip
    red_team_run = red_team_run_start(user=owner, red_team_set=red_team_set, version=published, config=config)
    for part in red_team_run.runs.all():
        process_run(part)
    assert red_team_run.is_finished
    other = Candidate.objects.filter(run=run).exclude(pk=claimed.pk).order_by("id").first()
    gold = GoldLabel.objects.create(policy=published.policy, pair_id=other.pair_id, label=other.label)
    preview = draft_preview_start(user=owner, draft=published.policy.versions.get(number=2), config=config)
    predictions = "pair_id,label,p_no_match,p_strong_match\n" + "".join(
        f"{c.pair_id},no_match,0.7,0.3\n" for c in Candidate.objects.filter(run=run)
    )
    student = student_evaluation_import(
        user=engineer, export=export, stream=io.BytesIO(predictions.encode()), name="fuzz.csv",
        student_name="fuzz-student", student_version="1",
    ).evaluation  # fmt: skip
    return {
        "red_team_set_id": red_team_set.pk,
        "red_team_run_id": red_team_run.pk,
        "other_id": red_team_run.pk,
        "slug": "match",
        "number": 1,
        "run_id": run.pk,
        "batch_id": pairs.pk,
        "export_id": export.pk,
        "name": export.files[0]["name"],
        "feedback_id": feedback.pk,
        "config_id": config.pk,
        "candidate_id": claimed.pk,
        "gold_id": gold.pk,
        "preview_id": preview.pk,
        "pair_id": gold.pair_id,
        "student_id": student.pk,
    }


def _caller(role: str, make_user):
    if role == "anonymous":
        return {}
    user = make_user("fuzz-staff", is_staff=True) if role == "staff" else make_user(f"fuzz-{role}", role)
    return {"Authorization": f"Bearer {services.api_token_create(user=user, name='fuzz').raw}"}


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_documented(role, api_data, make_user, settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    app = DjangoTestApp()
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    headers = _caller(role, make_user)
    failures, answered = [], {}
    operations = [result.ok() for result in schema.get_all_operations()]
    # Proof that the role reaches the real rows, before the fuzz deletes any: each of these, called plainly with
    # their ids, answers 200 and matches its schema (which fuzzed cases hit an id is up to the generator).
    for operation in operations:
        if operation.label in READS_DATA[role]:
            known = {p.name: api_data[p.name] for p in operation.path_parameters}
            response = operation.Case(path_parameters=known).call_and_validate(headers=headers, checks=CHECKS)
            assert response.status_code == 200, (operation.label, response.status_code, response.text[:300])
    # deletes last: an export deleted early would leave its downloads nothing to serve
    for operation in sorted(operations, key=lambda operation: operation.method.upper() == "DELETE"):
        known = {name: api_data[name] for name in (p.name for p in operation.path_parameters) if name in api_data}
        checks = CHECKS[1:] if operation.label in NO_LABEL_STUDIO else CHECKS
        strategies = [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        if known:
            strategies.append(operation.as_strategy(path_parameters=known))
        if operation.label in REAL_BODIES:
            strategies.append(operation.as_strategy(body=REAL_BODIES[operation.label]))
        strategy = st.one_of(strategies)

        @seed(SEED)
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def fuzz(case):
            response = case.call_and_validate(headers=headers, checks=checks)
            answered.setdefault(case.operation.label, set()).add(response.status_code)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as failure:  # report each failing operation, go on with the rest
            failures.append(f"{operation.label}: {failure}")

    assert not failures, "\n\n".join(failures + app.errors)
    assert {operation.label for operation in operations} <= set(answered), "every operation was fuzzed"
    if role == "anonymous":
        assert set().union(*answered.values()) <= {401, 403, 404}, answered


# --- what the fuzzing found, pinned so a change of generated cases cannot lose it -----------------------------
def test_text_with_a_nul_character_is_refused_with_a_422(client, api_data, engineer):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {services.api_token_create(user=engineer, name='t').raw}"}
    body = {"policy": "ma\u0000tch", "version": 1, "teacher": "baseline"}

    created = client.post("/api/runs", body, content_type="application/json", **auth)
    listed = client.get(f"/api/runs/{api_data['run_id']}/candidates", {"routing": "\u0000"}, **auth)

    assert created.status_code == listed.status_code == 422
    assert "NUL" in created.json()["detail"][0]["msg"] and "policy" in created.json()["detail"][0]["msg"]
    assert listed.json()["detail"][0]["loc"] == ["query", "routing"]


@pytest.mark.parametrize("url", ["/api/policies/ma%00tch/versions/1", "/api/policies/ma%00tch/exports/latest"])
def test_a_path_with_a_nul_character_is_refused_with_a_422(client, api_data, engineer, url):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {services.api_token_create(user=engineer, name='t').raw}"}

    response = client.get(url, **auth)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path"]
    assert client.get("/api/policies/match/versions/1", **auth).status_code == 200


def test_a_negative_candidates_offset_is_refused_with_a_422(client, api_data, engineer):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {services.api_token_create(user=engineer, name='t').raw}"}

    response = client.get(f"/api/runs/{api_data['run_id']}/candidates", {"offset": -1}, **auth)

    assert response.status_code == 422
    assert client.get(f"/api/runs/{api_data['run_id']}/candidates", {"offset": 1}, **auth).status_code == 200
