"""The migration from environment variables to key names keeps configs that used a configured key's variable
working and leaves the others needing a key, recording each mapping."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# A serialized rollback leaves the content types as the later serialized tests saved them.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

BEFORE = [("labeling", "0011_labelstudio_account_link")]
AFTER = [("labeling", "0012_teacher_api_key_names")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def latest_schema_afterwards():
    """Going back to BEFORE also unapplies the migrations after AFTER: put every app back at its latest."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_variables_become_key_names_or_are_cleared(settings):
    settings.TEACHER_API_KEYS = {
        "openai": {"env": "OPENAI_API_KEY", "base_urls": []},
        "team": {"env": "TEAM_KEY", "base_urls": []},
    }
    old = migrate(BEFORE)
    try:
        Config = old.get_model("labeling", "TeacherConfig")
        for name, variable in [("default", "OPENAI_API_KEY"), ("team", "TEAM_KEY"), ("leak", "DATABASE_URL")]:
            Config.objects.create(name=name, api_key_env=variable)
    finally:
        new = migrate(AFTER)
    Config, Change = new.get_model("labeling", "TeacherConfig"), new.get_model("labeling", "TeacherConfigChange")
    assert dict(Config.objects.values_list("name", "api_key_name")) == {"default": "openai", "team": "team", "leak": ""}
    assert set(Change.objects.values_list("config_name", "old_value", "new_value", "changed_by")) == {
        ("default", "OPENAI_API_KEY (environment variable)", "openai", None),
        ("team", "TEAM_KEY (environment variable)", "team", None),
        ("leak", "DATABASE_URL (environment variable)", "", None),
    }
