"""Reachability of the database and the Celery broker, for ``GET /healthz``.

Errors name hosts, users and broker addresses, so only staff see them (and the log, which operators read)."""

import logging

from django.db import connection

from .celery import app as celery_app

logger = logging.getLogger(__name__)


def check_database() -> str | None:
    """None when the database answers, else the error."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means unreachable
        return f"{type(error).__name__}: {error}"
    return None


def check_broker(timeout: float = 2.0) -> str | None:
    """None when the broker accepts a connection, else the error."""
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as error:  # noqa: BLE001
        return f"{type(error).__name__}: {error}"
    return None


def health_report(*, details: bool) -> tuple[bool, dict]:
    """``(healthy, report)``: the overall status, plus each check and its error when ``details``."""
    checks = {"database": check_database(), "broker": check_broker()}
    for name, error in checks.items():
        if error is not None:
            logger.warning("healthz: %s unreachable: %s", name, error)
    healthy = all(error is None for error in checks.values())
    report = {"status": "ok" if healthy else "unavailable"}
    if details:
        report.update({name: ("ok" if error is None else {"error": error}) for name, error in checks.items()})
    return healthy, report
