"""GET /api/openapi.json describes the API."""

POLICY_PATHS = {
    "/api/me": {"get"},
    "/api/policies": {"get", "post"},
    "/api/policies/{slug}": {"get"},
    "/api/policies/{slug}/versions/{number}": {"get"},
    "/api/policies/{slug}/versions/{number}/prompt": {"get"},
    "/api/policies/{slug}/diff": {"get"},
    "/api/policies/{slug}/draft": {"post", "put"},
    "/api/policies/{slug}/draft/publish": {"post"},
}


# Every operation's operationId, as API clients generated from the schema know it. django-ninja derives it from the
# endpoint's module and function name, so an endpoint that moves keeps its old one with an explicit ``operation_id``.
# A new endpoint adds its row here.
OPERATION_IDS = {
    ("/api/policies/{slug}/redteam/sets/custom", "post"): "labeling_redteam_api_create_custom_set",
    ("/api/students", "get"): "labeling_api_list_students",
    ("/api/students", "post"): "labeling_api_create_student",
    ("/api/students/{student_id}", "get"): "labeling_api_get_student",
    ("/api/students/{student_id}/queue", "post"): "labeling_api_queue_student_disagreements",
    ("/api/exports", "get"): "exports_api_list_exports",
    ("/api/exports", "post"): "exports_api_create_export",
    ("/api/exports/{export_id}", "delete"): "exports_api_delete_export",
    ("/api/exports/{export_id}", "get"): "exports_api_get_export",
    ("/api/exports/{export_id}/archive", "get"): "exports_api_download_archive",
    ("/api/exports/{export_id}/files/{name}", "get"): "exports_api_download_file",
    ("/api/exports/{export_id}/manifest", "get"): "exports_api_get_manifest",
    ("/api/feedback", "post"): "labeling_api_create_feedback",
    ("/api/feedback/{feedback_id}", "get"): "labeling_api_get_feedback",
    ("/api/feedback/{feedback_id}/dismiss", "post"): "labeling_api_dismiss_feedback",
    ("/api/feedback/{feedback_id}/resolve", "post"): "labeling_api_resolve_feedback",
    ("/api/feedback/{feedback_id}/reopen", "post"): "labeling_api_reopen_feedback",
    ("/api/imports", "get"): "labeling_api_list_imports",
    ("/api/imports", "post"): "labeling_api_create_import",
    ("/api/imports/{batch_id}", "get"): "labeling_api_get_import",
    ("/api/me", "get"): "policyhub_api_me",
    ("/api/policies", "get"): "policyhub_api_list_policies",
    ("/api/policies/{slug}", "get"): "policyhub_api_get_policy",
    ("/api/policies/{slug}/diff", "get"): "policyhub_api_get_diff",
    ("/api/policies/{slug}/draft", "post"): "policyhub_api_start_draft",
    ("/api/policies/{slug}/draft", "put"): "policyhub_api_save_draft",
    ("/api/policies/{slug}/draft/publish", "post"): "policyhub_api_publish_draft",
    ("/api/policies/{slug}/exports/latest", "get"): "exports_api_latest_export",
    ("/api/policies/{slug}/feedback", "get"): "labeling_api_list_feedback",
    ("/api/policies/{slug}/exports/latest/archive", "get"): "exports_api_latest_archive",
    ("/api/policies/{slug}/exports/latest/files/{name}", "get"): "exports_api_latest_file",
    ("/api/policies/{slug}/versions/{number}", "get"): "policyhub_api_get_version",
    ("/api/policies/{slug}/versions/{number}/agreement", "get"): "labeling_agreement_api_version_agreement",
    ("/api/policies/{slug}/versions/{number}/prompt", "get"): "policyhub_api_get_prompt",
    ("/api/policies/{slug}/versions/{number}/trust", "get"): "labeling_trust_api_version_trust",
    ("/api/policies/{slug}/redteam/sets", "post"): "labeling_redteam_api_create_set",
    ("/api/redteam/sets/{red_team_set_id}", "get"): "labeling_redteam_api_get_set",
    ("/api/redteam/runs/plan", "post"): "labeling_redteam_api_plan_run",
    ("/api/redteam/runs", "post"): "labeling_redteam_api_start_run",
    ("/api/redteam/runs/{red_team_run_id}", "get"): "labeling_redteam_api_get_run",
    ("/api/redteam/runs/{red_team_run_id}/cancel", "post"): "labeling_redteam_api_cancel_run",
    ("/api/redteam/runs/{red_team_run_id}/resume", "post"): "labeling_redteam_api_resume_run",
    ("/api/redteam/runs/{red_team_run_id}/report", "get"): "labeling_redteam_api_run_report",
    ("/api/redteam/runs/{red_team_run_id}/compare/{other_id}", "get"): "labeling_redteam_api_compare_runs",
    ("/api/policies/{slug}/gates", "get"): "labeling_api_gates_get_gates",
    ("/api/policies/{slug}/gates", "put"): "labeling_api_gates_put_gates",
    ("/api/policies/{slug}/draft/gates", "get"): "labeling_api_gates_get_draft_gates",
    ("/api/policies/{slug}/versions/{number}/gates", "get"): "labeling_api_gates_get_version_gates",
    ("/api/runs", "post"): "labeling_api_create_run",
    ("/api/runs/plan", "post"): "labeling_api_plan_run",
    ("/api/reviews/undo", "post"): "labeling_api_undo_review",
    ("/api/runs/{run_id}", "get"): "labeling_api_get_run",
    ("/api/runs/{run_id}/agreement", "get"): "labeling_agreement_api_run_agreement",
    ("/api/runs/{run_id}/cancel", "post"): "labeling_api_cancel_run",
    ("/api/runs/{run_id}/candidates", "get"): "labeling_api_list_candidates",
    ("/api/runs/{run_id}/labelstudio", "get"): "labeling_api_get_labelstudio",
    ("/api/runs/{run_id}/labelstudio/pull", "post"): "labeling_api_pull_labelstudio",
    ("/api/runs/{run_id}/labelstudio/push", "post"): "labeling_api_push_labelstudio",
    ("/api/runs/{run_id}/resume", "post"): "labeling_api_resume_run",
    # teacher configs, gold set, gold scores, draft previews, policy creation (issue 14)
    ("/api/policies", "post"): "policyhub_api_create_policy",
    ("/api/teachers", "get"): "labeling_api_teachers_list_teachers",
    ("/api/teachers", "post"): "labeling_api_teachers_create_teacher",
    ("/api/teachers/keys", "get"): "labeling_api_teachers_list_teacher_keys",
    ("/api/teachers/{config_id}", "patch"): "labeling_api_teachers_update_teacher",
    ("/api/teachers/{config_id}/changes", "get"): "labeling_api_teachers_list_teacher_changes",
    ("/api/policies/{slug}/gold", "get"): "labeling_api_gold_list_gold",
    ("/api/policies/{slug}/gold/events", "get"): "labeling_api_gold_list_gold_events",
    ("/api/gold/items/{candidate_id}/mark", "post"): "labeling_api_gold_mark_gold",
    ("/api/gold/items/{candidate_id}/replace", "post"): "labeling_api_gold_replace_gold",
    ("/api/policies/{slug}/gold/{gold_id}/remove", "post"): "labeling_api_gold_remove_gold",
    ("/api/runs/{run_id}/gold/mark-all", "post"): "labeling_api_gold_mark_run_gold",
    ("/api/policies/{slug}/gold/scores", "get"): "labeling_api_gold_list_gold_scores",
    ("/api/policies/{slug}/gold/scores", "post"): "labeling_api_gold_start_gold_score",
    ("/api/policies/{slug}/gold/scores/{run_id}", "get"): "labeling_api_gold_get_gold_score",
    ("/api/policies/{slug}/previews", "post"): "labeling_api_previews_start_preview",
    ("/api/policies/{slug}/previews/{preview_id}", "get"): "labeling_api_previews_get_preview",
    ("/api/policies/{slug}/previews/{preview_id}/flips", "get"): "labeling_api_previews_list_preview_flips",
    # label-set changes between versions (issue 13)
    ("/api/policies/{slug}/draft/relabel", "get"): "labeling_api_labelmap_list_relabel",
    ("/api/policies/{slug}/draft/relabel/{pair_id}", "put"): "labeling_api_labelmap_set_relabel",
}


def test_openapi_document_lists_the_policy_endpoints(client, db):
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    document = response.json()
    assert document["info"]["title"] == "PolicyHub API"
    for path, methods in POLICY_PATHS.items():
        assert path in document["paths"], path
        assert methods <= set(document["paths"][path]), path


def test_openapi_document_declares_bearer_auth(client, db):
    document = client.get("/api/openapi.json").json()

    schemes = document["components"]["securitySchemes"]
    assert any(s.get("type") == "http" and s.get("scheme") == "bearer" for s in schemes.values())
    operation = document["paths"]["/api/policies"]["get"]
    assert operation["security"]


def test_openapi_document_describes_the_draft_payload(client, db):
    document = client.get("/api/openapi.json").json()

    put = document["paths"]["/api/policies/{slug}/draft"]["put"]
    ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"revision", "labels", "rules"} <= set(schema["required"])
    assert "409" in put["responses"]


def test_api_docs_page_is_served(client, db):
    response = client.get("/api/docs")

    assert response.status_code == 200
    assert b"openapi.json" in response.content


def test_every_operation_keeps_its_operation_id(client, db):
    document = client.get("/api/openapi.json").json()

    operation_ids = {
        (path, method): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert operation_ids == OPERATION_IDS
