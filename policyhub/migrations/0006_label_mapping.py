"""A version's label mapping (how its labels map from the previous version's); on PostgreSQL the immutability
trigger refuses changing it on a published or retired version, like the rest of the content."""

from django.db import migrations, models

FUNCTION = """
CREATE OR REPLACE FUNCTION policyhub_version_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'policy version % is % and cannot be deleted', OLD.id, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.body IS DISTINCT FROM OLD.body OR NEW.labels IS DISTINCT FROM OLD.labels
        OR NEW.rules IS DISTINCT FROM OLD.rules OR NEW.content_hash IS DISTINCT FROM OLD.content_hash
        OR NEW.number IS DISTINCT FROM OLD.number OR NEW.policy_id IS DISTINCT FROM OLD.policy_id
        OR NEW.status = 'draft'{extra}
    ) THEN
        RAISE EXCEPTION 'policy version % is %: its content never changes', OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        extra = "\n        OR NEW.label_mapping IS DISTINCT FROM OLD.label_mapping"
        schema_editor.execute(FUNCTION.replace("{extra}", extra), params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION.replace("{extra}", ""), params=None)


class Migration(migrations.Migration):
    dependencies = [("policyhub", "0005_policy_idempotency_key")]
    operations = [
        migrations.AddField(
            model_name="policyversion",
            name="label_mapping",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="{old key: [new key, …]} from the labels of ``based_on``: one key renames or merges, "
                "several split. Kept labels are implicit. Part of the content (and its hash) once not empty.",
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
