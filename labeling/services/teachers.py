"""Teacher configs: how the teacher is asked. Runs keep their own snapshot, so editing a config is always safe.
Every change of where a config's requests go, or with which key, is recorded (TeacherConfigChange)."""

from django.db import transaction

from ..models import TeacherConfig, TeacherConfigChange


@transaction.atomic
def teacher_config_save(*, config: TeacherConfig, user) -> TeacherConfig:
    """Validate and save a new or edited config (the form, the admin); the first person to save it is recorded as
    its creator, and each audited field that changed (or was set on creation) as a change by ``user``."""
    before = TeacherConfig.objects.select_for_update().filter(pk=config.pk).first() if config.pk else None
    if config.created_by_id is None:
        config.created_by = user
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
