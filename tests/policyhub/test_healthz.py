"""GET /healthz: database and broker reachability as JSON, 200 or 503, no login needed; only staff see which check
failed and why (the errors name hosts, users and broker addresses)."""

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


@pytest.fixture
def staff(make_user):
    return make_user("sam", is_staff=True)


@pytest.mark.django_db
def test_healthz_reports_ok_without_login(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_shows_staff_each_check(client_for, staff):
    response = client_for(staff).get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_is_503_without_the_broker_address_for_anonymous_callers(client, broker_down):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert b"127.0.0.1" not in response.content


@pytest.mark.django_db
def test_healthz_tells_staff_which_check_failed_and_why(client_for, staff, broker_down):
    response = client_for(staff).get("/healthz")

    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "unavailable"
    assert report["database"] == "ok"
    assert set(report["broker"]) == {"error"}
    assert "127.0.0.1:1" in report["broker"]["error"]  # e.g. "OperationalError: Error 111 connecting to 127.0.0.1:1"


@pytest.mark.django_db
def test_healthz_logs_the_error_for_operators(client, broker_down, caplog):
    client.get("/healthz")

    assert any("broker unreachable" in r.getMessage() and "127.0.0.1:1" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_healthz_hides_details_from_logged_in_users_who_are_not_staff(client_for, annotator, broker_down):
    response = client_for(annotator).get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


@pytest.mark.django_db
def test_healthz_recovers_when_the_broker_is_back(client, monkeypatch):
    real = celery_app.conf.broker_url
    _point_broker_at(monkeypatch, CLOSED_PORT_BROKER)
    assert client.get("/healthz").status_code == 503

    _point_broker_at(monkeypatch, real)

    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_healthz_answers_logged_in_users_too(client_for, nobody):
    response = client_for(nobody).get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
