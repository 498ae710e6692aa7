"""System checks of the database the labeling area runs on (``manage.py migrate`` and ``check --database``)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import connection


@register(Tags.database)
def import_row_checks(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    """Pairs imports skip their per-row foreign-key checks only where the role may set
    ``session_replication_role`` (``labeling.imports.staging.references_proved``); say so where it may not, since a
    million-pair import then takes about 2.5 times as long."""
    from .imports.staging import row_checks_skipped

    if not databases or "default" not in databases or connection.vendor != "postgresql":
        return []
    if not settings.IMPORT_SKIP_ROW_FK_CHECKS or row_checks_skipped():
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        role = cursor.fetchone()[0]
    return [
        Warning(
            f"The database role {role!r} may not set session_replication_role: pairs imports check their foreign "
            "keys row by row (correct, about 2.5 times slower at a million pairs).",
            hint=f'As a superuser: GRANT SET ON PARAMETER session_replication_role TO "{role}"; (PostgreSQL 15+), '
            "or set IMPORT_SKIP_ROW_FK_CHECKS=0 to silence this.",
            id="labeling.W001",
        )
    ]
