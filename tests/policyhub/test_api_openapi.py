"""GET /api/openapi.json describes the API."""

POLICY_PATHS = {
    "/api/me": {"get"},
    "/api/policies": {"get"},
    "/api/policies/{slug}": {"get"},
    "/api/policies/{slug}/versions/{number}": {"get"},
    "/api/policies/{slug}/versions/{number}/prompt": {"get"},
    "/api/policies/{slug}/diff": {"get"},
    "/api/policies/{slug}/draft": {"post", "put"},
    "/api/policies/{slug}/draft/publish": {"post"},
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
