"""On PostgreSQL, refuse in the database what the model refuses in Python: changing the content of a published
or retired version (even through ``QuerySet.update``), reviving it as a draft, or deleting it."""

from django.db import migrations

FORWARD = """
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
        OR NEW.status = 'draft'
    ) THEN
        RAISE EXCEPTION 'policy version % is %: its content never changes', OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER policyhub_version_immutable
    BEFORE UPDATE OR DELETE ON policyhub_policyversion
    FOR EACH ROW EXECUTE FUNCTION policyhub_version_immutable();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS policyhub_version_immutable ON policyhub_policyversion;
DROP FUNCTION IF EXISTS policyhub_version_immutable();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("policyhub", "0002_roles")]
    operations = [migrations.RunPython(forward, backward)]
