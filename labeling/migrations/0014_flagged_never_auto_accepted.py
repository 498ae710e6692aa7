from django.conf import settings
from django.db import migrations, models


def check_existing_rows(apps, schema_editor):
    """Refuse to migrate while a flagged candidate is auto-accepted, naming the rows, instead of failing with a
    database error. The pipeline never wrote such rows; one found here was changed by hand."""
    constraint = Migration.operations[-1].constraint
    bad = apps.get_model("labeling", "Candidate").objects.exclude(constraint.condition)
    if count := bad.count():
        ids = ", ".join(str(pk) for pk in bad.order_by("pk").values_list("pk", flat=True)[:10])
        raise RuntimeError(f"Fix these rows, then migrate again: {count} candidate(s) break {constraint.name} ({ids}).")


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0013_watchdog_leases"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(check_existing_rows, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="candidate",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        models.Q(("routing", "auto_accepted"), _negated=True),
                        models.Q(("approved_by", "teacher"), _negated=True),
                    ),
                    models.Q(
                        models.Q(("trust_ok", False), _negated=True),
                        ("reason_suspected_injection", False),
                        ("reason_trust_check_failed", False),
                    ),
                    _connector="OR",
                ),
                name="candidate_flagged_never_auto_accepted",
                violation_error_message="A candidate that failed a trust check or holds suspected injection is "
                "never auto-accepted.",
            ),
        ),
    ]
