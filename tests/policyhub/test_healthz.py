"""GET /healthz: database and broker reachability as JSON, 200 or 503, no login needed."""

import pytest

from policyhub.celery import app as celery_app

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


def _point_broker_at(monkeypatch, url: str) -> None:
    """Celery reads ``CELERY_BROKER_URL`` from the environment before its own config: change both.
    monkeypatch restores them after the test."""
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setitem(celery_app.conf, "broker_url", url)
    assert celery_app.conf.broker_write_url == url


@pytest.fixture
def broker_down(monkeypatch):
    """The Celery app pointed at a port nothing listens on."""
    _point_broker_at(monkeypatch, CLOSED_PORT_BROKER)


@pytest.mark.django_db
def test_healthz_reports_database_and_broker_ok_without_login(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_is_503_with_the_broker_error_when_the_broker_is_down(client, broker_down):
    response = client.get("/healthz")

    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "unavailable"
    assert report["database"] == "ok"
    assert set(report["broker"]) == {"error"}
    assert "127.0.0.1:1" in report["broker"]["error"]  # e.g. "OperationalError: Error 111 connecting to 127.0.0.1:1"


@pytest.mark.django_db
def test_healthz_recovers_when_the_broker_is_back(client, monkeypatch):
    real = celery_app.conf.broker_url
    _point_broker_at(monkeypatch, CLOSED_PORT_BROKER)
    assert client.get("/healthz").status_code == 503

    _point_broker_at(monkeypatch, real)

    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_healthz_answers_logged_in_users_too(client_for, nobody):
    assert client_for(nobody).get("/healthz").status_code == 200


@pytest.mark.django_db
def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
