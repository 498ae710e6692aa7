"""Teacher configs: how the teacher is asked. Runs keep their own snapshot, so editing a config is always safe.
Every change of where a config's requests go, or with which key, is recorded (TeacherConfigChange)."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..models import TeacherConfig, TeacherConfigChange
from ..selectors.teachers import teacher_config_for_key


def teacher_config_save(*, config: TeacherConfig, user, idempotency_key: str = "") -> TeacherConfig:
    """Validate and save a new or edited config (the page, the API, the admin); the first person to save it is
    recorded as its creator, and each audited field that changed (or was set on creation) as a change by ``user``.
    A new config saved with an ``idempotency_key`` (the API's header) the same user used before is not made
    again: the first one comes back."""
    key = idempotency_key[:200] if config.pk is None else ""
    if key and (existing := teacher_config_for_key(user=user, key=key)):
        return existing
    try:
        with transaction.atomic():
            return _save(config, user, key)
    except (IntegrityError, ValidationError):
        # a concurrent retry with the key saved first (its row fails our unique checks, or the insert)
        if key and (existing := teacher_config_for_key(user=user, key=key)):
            return existing
        raise


def _save(config: TeacherConfig, user, key: str) -> TeacherConfig:
    before = TeacherConfig.objects.select_for_update().filter(pk=config.pk).first() if config.pk else None
    if config.created_by_id is None:
        config.created_by = user
    if key:
        config.idempotency_key = key
    if before and (before.base_url, before.model) != (config.base_url, config.model):
        config.n_supported, config.n_checked_at = None, None  # another endpoint or model: find out again
    config.full_clean()
    config.save()
    TeacherConfigChange.objects.bulk_create(
        TeacherConfigChange(
            config=config,
            config_name=config.name,
            field=field,
            changed_by=user,
            old_value=getattr(before, field) if before else "",
            new_value=getattr(config, field),
        )  # fmt: skip
        for field in TeacherConfig.AUDITED_FIELDS
        if (getattr(before, field) if before else "") != getattr(config, field)
    )
    return config
