"""Teacher configs: how the teacher is asked. Runs keep their own snapshot, so editing a config is always safe."""

from ..models import TeacherConfig


def teacher_config_save(*, form, user) -> TeacherConfig:
    """Save a teacher config from a validated form; the first person to save it is recorded as its creator."""
    config = form.save(commit=False)
    if config.created_by_id is None:
        config.created_by = user
    config.full_clean()
    config.save()
    return config
