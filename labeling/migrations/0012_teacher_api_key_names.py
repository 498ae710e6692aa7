"""Teacher configs name an API key from TEACHER_API_KEYS instead of an environment variable, and changes of their
base URL or key are recorded.

Existing configs: a variable that a configured key reads (OPENAI_API_KEY → ``openai`` by default) becomes that
key's name; any other variable is cleared, so the config shows "needs a configured key" and its runs are refused
until an ML engineer picks one. Either way the mapping is recorded as a change by no one (the migration)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def name_the_keys(apps, schema_editor):
    TeacherConfig = apps.get_model("labeling", "TeacherConfig")
    TeacherConfigChange = apps.get_model("labeling", "TeacherConfigChange")
    by_variable = {key["env"]: name for name, key in reversed(settings.TEACHER_API_KEYS.items())}
    for config in TeacherConfig.objects.all():
        variable = config.api_key_name  # still the variable: the field was renamed, not yet mapped
        config.api_key_name = by_variable.get(variable, "")
        config.save(update_fields=["api_key_name"])
        TeacherConfigChange.objects.create(
            config=config, config_name=config.name, field="api_key_name",
            old_value=f"{variable} (environment variable)", new_value=config.api_key_name,
        )  # fmt: skip


def back_to_variables(apps, schema_editor):
    TeacherConfig = apps.get_model("labeling", "TeacherConfig")
    for config in TeacherConfig.objects.all():
        key = settings.TEACHER_API_KEYS.get(config.api_key_name)
        config.api_key_name = key["env"] if key else "OPENAI_API_KEY"
        config.save(update_fields=["api_key_name"])


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0011_labelstudio_account_link"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TeacherConfigChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("config_name", models.CharField(max_length=80)),
                (
                    "field",
                    models.CharField(
                        choices=[("base_url", "base_url"), ("api_key_name", "api_key_name")], max_length=30
                    ),
                ),
                ("old_value", models.TextField(blank=True)),
                ("new_value", models.TextField(blank=True)),
                ("changed_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "changed_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "config",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="changes",
                        to="labeling.teacherconfig",
                    ),
                ),
            ],
            options={
                "ordering": ["-changed_at", "-id"],
                "indexes": [models.Index(fields=["config", "-changed_at"], name="teacherchange_config_time")],
            },
        ),
        migrations.RenameField(model_name="teacherconfig", old_name="api_key_env", new_name="api_key_name"),
        migrations.AlterField(
            model_name="teacherconfig",
            name="api_key_name",
            field=models.CharField(
                blank=True,
                default="openai",
                help_text="One of the keys in TEACHER_API_KEYS. Empty: none (the heuristic provider needs none).",
                max_length=100,
            ),
        ),
        migrations.RunPython(name_the_keys, back_to_variables),
        migrations.AlterField(
            model_name="teacherconfig",
            name="api_key_name",
            field=models.CharField(
                blank=True,
                default="openai",
                help_text="One of the keys in TEACHER_API_KEYS. Empty: none (the heuristic provider needs none).",
                max_length=64,
            ),
        ),
    ]
