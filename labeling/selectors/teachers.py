"""Reads for teacher configs."""

from django.db.models import QuerySet

from ..models import TeacherConfig, TeacherConfigChange
from ..teacher.endpoints import key_names


def teacher_key_names() -> list[str]:
    """The API keys configured in TEACHER_API_KEYS (names only)."""
    return key_names()


def teacher_config_list() -> QuerySet[TeacherConfig]:
    return TeacherConfig.objects.all()


def teacher_config_changes(config: TeacherConfig) -> QuerySet[TeacherConfigChange]:
    """The config's base URL and API key changes, newest first."""
    return config.changes.select_related("changed_by")


def teacher_config_for_key(*, user, key: str) -> TeacherConfig | None:
    """The config ``user`` created with this API ``Idempotency-Key`` (None for none, or no key)."""
    if not key or user is None:
        return None
    return TeacherConfig.objects.filter(created_by=user, idempotency_key=key[:200]).first()
