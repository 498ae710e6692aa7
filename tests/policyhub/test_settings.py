"""Settings from the environment: production (DEBUG=0) refuses to start without a SECRET_KEY; bad values fail
clearly; a DEBUG install gets its own random key."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from policyhub import settings as project_settings

BASE_DIR = Path(project_settings.BASE_DIR)
PYTHON = BASE_DIR / ".venv" / "bin" / "python"
START = "import django; from django.conf import settings; django.setup(); print('KEY=' + settings.SECRET_KEY)"


def start(tmp_path, code: str = START, **env: str) -> subprocess.CompletedProcess:
    """Start Django in a fresh interpreter with only the given policyhub variables set."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "DATABASE_URL", "CELERY_BROKER_URL"}
        and not name.startswith("DJANGO_")
    }
    clean.update(DJANGO_SETTINGS_MODULE="policyhub.settings", POLICYHUB_VAR_DIR=str(tmp_path / "var"), **env)
    python = PYTHON if PYTHON.exists() else Path(sys.executable)
    return subprocess.run(
        [str(python), "-c", code], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("extra", [{}, {"SECRET_KEY": ""}], ids=["unset", "empty"])
def test_production_without_secret_key_refuses_to_start(tmp_path, extra):
    result = start(tmp_path, DEBUG="0", **extra)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr
    assert not (tmp_path / "var" / "dev-secret-key").exists()


def test_production_with_secret_key_starts_with_that_key_and_secure_cookies(tmp_path):
    code = START + "; print(settings.DEBUG, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)"

    result = start(tmp_path, code, DEBUG="0", SECRET_KEY="a-production-secret")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["KEY=a-production-secret", "False True True"]


def test_production_reads_the_secret_key_from_a_file(tmp_path):
    key_file = tmp_path / "secret"
    key_file.write_text("key-from-a-mounted-file\n")

    result = start(tmp_path, DEBUG="0", SECRET_KEY_FILE=str(key_file))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "KEY=key-from-a-mounted-file"


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_debug_value_that_is_not_a_boolean_is_a_clear_error(tmp_path, value):
    result = start(tmp_path, DEBUG=value, SECRET_KEY="x")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"DEBUG={value!r} is not a boolean" in result.stderr


def test_debug_install_gets_its_own_random_key_kept_private_under_var(tmp_path):
    first = start(tmp_path / "a", DEBUG="1")
    second = start(tmp_path / "b", DEBUG="1")
    first_again = start(tmp_path / "a", DEBUG="1")

    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "a" / "var" / "dev-secret-key"
    assert first.stdout.strip() == f"KEY={key_file.read_text().strip()}"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.stdout != second.stdout  # never one key shared by every install
    assert first_again.stdout == first.stdout  # stable across restarts, so sessions survive
