"""A pairs import proves its foreign keys with its own join, under locks (``references_proved``): a member removed
while the pairs are imported fails the import with a row error instead of leaving a pair without its member, with
or without the per-row checks, and a database role that may not skip those checks imports with them."""

import io
import threading
import time
import uuid

import psycopg
import pytest
from django.db import connection
from django.test import override_settings

from labeling.models import Member, Pair
from labeling.services import import_file

from .conftest import JOBS_JSONL, MEMBERS_CSV


def _import(kind: str, text: str, ext: str = "csv"):
    return import_file(kind=kind, stream=io.BytesIO(text.encode()), name=f"{kind}-{uuid.uuid4().hex[:6]}.{ext}")


def _other_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"], user=s["USER"], host=s["HOST"] or None, port=s["PORT"] or None, password=s["PASSWORD"] or None
    )


@pytest.mark.parametrize("skip_row_checks", [True, False], ids=["checks skipped", "checked per row"])
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_member_removed_during_a_pairs_import_fails_the_file_and_leaves_no_pair_without_it(skip_row_checks):
    assert _import("members", MEMBERS_CSV + "m_gone,Leaving,,,,\n").ok
    assert _import("jobs", JOBS_JSONL, "jsonl").ok
    other = _other_connection()
    other.execute("DELETE FROM labeling_member WHERE external_id = 'm_gone'")  # not committed yet
    committed_at: list[float] = []

    def commit_later() -> None:
        time.sleep(1.0)
        committed_at.append(time.monotonic())
        other.commit()

    committer = threading.Thread(target=commit_later)
    committer.start()
    try:
        with override_settings(IMPORT_SKIP_ROW_FK_CHECKS=skip_row_checks):
            result = _import("pairs", "member_id,job_id\nm1,j1\nm_gone,j1\n")
        finished_at = time.monotonic()
    finally:
        committer.join()
        other.close()
    # the import waited for the removal to commit, then found the member gone: a row error, nothing written
    assert committed_at and finished_at >= committed_at[0]
    assert not result.ok
    assert result.batch.errors == [{"line": 3, "field": "member_id", "reason": "unknown member id 'm_gone'"}]
    assert not Member.objects.filter(external_id="m_gone").exists()
    assert Pair.objects.count() == 0
    # and the file imports once the missing member is taken out of it
    assert _import("pairs", "member_id,job_id\nm1,j1\n").ok


def test_a_database_role_that_may_not_skip_the_per_row_checks_imports_with_them(members_and_jobs, caplog):
    role = f"ph_plain_{uuid.uuid4().hex[:8]}"  # created in the test's transaction: rolled back with it
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOSUPERUSER")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cursor.execute(f"SET ROLE {role}")
    try:
        bad = _import("pairs", "member_id,job_id\nm1,j1\nm9,j1\nm1,j1\n")
        good = _import("pairs", "member_id,job_id\nm1,j1\nm2,j2\n")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert bad.batch.errors == [
        {"line": 3, "field": "member_id", "reason": "unknown member id 'm9'"},
        {"line": 4, "field": "member_id, job_id", "reason": "duplicate of line 2"},
    ]
    assert good.ok and good.batch.rows_created == 2
    assert set(Pair.objects.values_list("member__external_id", "job__external_id")) == {("m1", "j1"), ("m2", "j2")}
    assert "foreign keys checked per row (permission denied" in caplog.text


def test_the_imported_tables_have_no_triggers_of_their_own_that_skipping_the_row_checks_would_skip(db):
    """``session_replication_role = replica`` skips every ordinary trigger, not only the foreign keys' ones: a
    trigger added to these tables must be declared ``ENABLE ALWAYS`` or the imports must stop skipping."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'A' "
            "AND tgrelid IN ('labeling_pair'::regclass, 'labeling_member'::regclass, 'labeling_job'::regclass)"
        )
        assert cursor.fetchall() == []


def test_the_database_checks_say_when_the_role_may_not_skip_the_per_row_checks(db, settings):
    """``manage.py migrate`` (and ``check --database default``) warn the operator, with the grant that fixes it."""
    from django.core.checks import Tags, run_checks

    def warnings():
        return [w for w in run_checks(tags=[Tags.database], databases=["default"]) if w.id == "labeling.W001"]

    assert warnings() == []  # the tests' role may: no warning
    role = f"ph_plain_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOSUPERUSER")
        cursor.execute(f"SET ROLE {role}")
    try:
        (warning,) = warnings()
        settings.IMPORT_SKIP_ROW_FK_CHECKS = False
        assert warnings() == []  # checked per row on purpose: nothing to say
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert f"The database role '{role}' may not set session_replication_role" in warning.msg
    assert f'GRANT SET ON PARAMETER session_replication_role TO "{role}";' in warning.hint
