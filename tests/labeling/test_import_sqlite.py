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
