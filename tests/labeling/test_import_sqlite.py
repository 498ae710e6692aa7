"""The same files give the same outcome on SQLite and PostgreSQL: bad_import_files uploaded through the form to a
real worker on the embedded default (SQLite, filesystem broker), compared error for error with an import of the
same bytes into this session's PostgreSQL database."""

import io
import json

import pytest

from labeling.services import import_file
from tests.embedded import EmbeddedApp

from .bad_import_files import BAD_FILES, CAPS_ENV, GOOD_FILE, MAX_LINE_BYTES, MAX_UPLOAD_BYTES, OVERSIZE

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
CASES = [*BAD_FILES, OVERSIZE, GOOD_FILE]


def _upload_all(app: EmbeddedApp, folder) -> dict[str, int]:
    code = (
        "from pathlib import Path\n"
        "from django.contrib.auth.models import Group, User\n"
        "from django.core.files.uploadedfile import SimpleUploadedFile\n"
        "from django.test import Client\n"
        "user = User.objects.create_user('emma')\n"
        "user.groups.add(Group.objects.get(name='ml_engineer'))\n"
        "client = Client()\n"
        "client.force_login(user)\n"
        "codes = {}\n"
        "for path in map(Path, sys.argv[1:]):\n"
        "    upload = SimpleUploadedFile(path.name, path.read_bytes())\n"
        "    codes[path.name] = client.post('/imports/', {'kind': 'members', 'file': upload}).status_code\n"
        "print(json.dumps(codes))\n"
    )
    paths = []
    for case in CASES:
        (folder / case.name).write_bytes(case.data)
        paths.append(str(folder / case.name))
    return app.script(code, *paths)


def _sqlite_outcomes(app: EmbeddedApp, worker) -> dict[str, tuple[str, list]]:
    def finished():
        rows = app.query("SELECT source_name, status, errors FROM labeling_importbatch WHERE status IN (?, ?)",
                         ("succeeded", "failed"))  # fmt: skip
        done = {name: (status, json.loads(errors)) for name, status, errors in rows}
        return done if len(done) == len(CASES) else None

    return worker.wait_for(finished, "the SQLite worker to finish every import", timeout=60)


def test_each_file_has_the_same_outcome_on_sqlite_and_postgresql(tmp_path, settings):
    app = EmbeddedApp(tmp_path, env=CAPS_ENV)
    app.manage("migrate", "--noinput")
    (tmp_path / "files").mkdir()
    worker = app.worker().start()
    try:
        codes = _upload_all(app, tmp_path / "files")
        on_sqlite = _sqlite_outcomes(app, worker)
    finally:
        worker.stop()
    assert codes == {case.name: 413 if case is OVERSIZE else 302 for case in CASES}
    assert app.query("SELECT COUNT(*) FROM labeling_member") == [(2,)]  # the good file only

    settings.IMPORT_MAX_LINE_BYTES, settings.IMPORT_MAX_UPLOAD_BYTES = MAX_LINE_BYTES, MAX_UPLOAD_BYTES
    on_postgresql = {}
    for case in CASES:
        batch = import_file(kind="members", stream=io.BytesIO(case.data), name=case.name).batch
        on_postgresql[case.name] = (batch.status, batch.errors)
    assert on_sqlite == on_postgresql
    for case in [*BAD_FILES, OVERSIZE]:
        status, errors = on_sqlite[case.name]
        assert status == "failed" and [(e["line"], e["field"]) for e in errors] == [(case.line, case.field)]
    assert on_sqlite[GOOD_FILE.name] == ("succeeded", [])


#: Members, jobs, then pairs files: new, partly present, and bad only in ways the set checks find (an unknown
#: member, a duplicate), which a pairs import inserts before checking and must roll back.
PAIRS_SEQUENCE = [
    ("members", "m.csv", "member_id,headline\nm1,A\nm2,B\n"),
    ("jobs", "j.csv", "job_id,title,description\nj1,T,D\nj2,T,D\n"),
    ("pairs", "p.csv", "member_id,job_id\nm1,j1\nm2,j2\n"),
    ("pairs", "p2.csv", "member_id,job_id\nm1,j1\nm1,j2\n"),
    ("pairs", "p3.csv", "member_id,job_id\nm2,j1\nm9,j1\nm2,j1\n"),
]
_OUTCOMES = (  # run in the embedded app's process and in this one
    "import io\n"
    "from labeling.models import Pair\n"
    "from labeling.services import import_file\n"
    "def outcomes(steps):\n"
    "    done = []\n"
    "    for kind, name, text in steps:\n"
    "        b = import_file(kind=kind, stream=io.BytesIO(text.encode()), name=name).batch\n"
    "        done.append([b.status, b.rows_created, b.rows_unchanged, b.errors])\n"
    "    pairs = sorted(Pair.objects.values_list('member__external_id', 'job__external_id'))\n"
    "    return [done, [list(p) for p in pairs]]\n"
)


def test_pairs_imports_insert_then_check_alike_on_sqlite_and_postgresql(tmp_path):
    app = EmbeddedApp(tmp_path)
    app.manage("migrate", "--noinput")
    code = _OUTCOMES + "print(json.dumps(outcomes(json.loads(sys.argv[1]))))\n"
    on_sqlite = app.script(code, json.dumps(PAIRS_SEQUENCE))
    namespace: dict = {}
    exec(_OUTCOMES, namespace)  # noqa: S102 - the same code, against this session's PostgreSQL database
    on_postgresql = json.loads(json.dumps(namespace["outcomes"](PAIRS_SEQUENCE)))
    assert on_sqlite == on_postgresql
    outcomes, pairs = on_sqlite
    assert [o[:3] for o in outcomes] == [
        ["succeeded", 2, 0],
        ["succeeded", 2, 0],
        ["succeeded", 2, 0],
        ["succeeded", 1, 1],
        ["failed", 0, 0],
    ]
    assert outcomes[4][3] == [
        {"line": 3, "field": "member_id", "reason": "unknown member id 'm9'"},
        {"line": 4, "field": "member_id, job_id", "reason": "duplicate of line 2"},
    ]
    assert pairs == [["m1", "j1"], ["m1", "j2"], ["m2", "j2"]]  # the failed file added nothing
