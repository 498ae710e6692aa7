"""Settings from the environment: DEBUG is off unless set; production (DEBUG off) refuses to start without a
SECRET_KEY and enforces HTTPS, so `check --deploy` finds nothing to report; bad values fail clearly; a DEBUG install
gets its own random key."""

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
    return run_python(tmp_path, ["-c", code], env)


def manage(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_python(tmp_path, ["manage.py", *args], env)


def run_python(tmp_path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "DATABASE_URL", "CELERY_BROKER_URL"}
        and not name.startswith("DJANGO_")
    }
    clean.update(DJANGO_SETTINGS_MODULE="policyhub.settings", POLICYHUB_VAR_DIR=str(tmp_path / "var"), **env)
    python = PYTHON if PYTHON.exists() else Path(sys.executable)
    return subprocess.run([str(python), *args], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=60)


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


def test_debug_is_off_unless_set(tmp_path):
    without_key = start(tmp_path)
    with_key = start(tmp_path, START + "; print(settings.DEBUG)", SECRET_KEY="a-production-secret")

    assert "SECRET_KEY is required when DEBUG is off" in without_key.stderr
    assert with_key.stdout.splitlines() == ["KEY=a-production-secret", "False"]


SECURITY = START + (
    "; print(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SESSION_COOKIE_SECURE,"
    " settings.SECURE_PROXY_SSL_HEADER)"
)


def test_a_debug_run_is_served_over_plain_http(tmp_path):
    result = start(tmp_path, SECURITY, DEBUG="1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "False 0 False None"


def test_behind_a_tls_proxy_its_header_is_trusted_and_https_settings_can_be_turned_off(tmp_path):
    env = {"DEBUG": "0", "SECRET_KEY": "x", "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https"}
    off = {"SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0", "SESSION_COOKIE_SECURE": "0"}

    result = start(tmp_path, SECURITY, **env, **off)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "False 0 False ('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.parametrize("value", ["X-Forwarded-Proto", "X-Forwarded-Proto:", ":https"])
def test_a_proxy_header_without_its_value_is_a_clear_error(tmp_path, value):
    result = start(tmp_path, DEBUG="0", SECRET_KEY="x", SECURE_PROXY_SSL_HEADER=value)

    assert result.returncode != 0
    assert f"SECURE_PROXY_SSL_HEADER={value!r} must be HEADER:VALUE" in result.stderr


def test_hsts_seconds_that_are_not_a_number_are_a_clear_error(tmp_path):
    result = start(tmp_path, DEBUG="0", SECRET_KEY="x", SECURE_HSTS_SECONDS="a year")

    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS='a year' is not a whole number" in result.stderr


def test_storage_deletion_retries_are_set_from_the_environment_and_bad_ones_are_a_clear_error(tmp_path):
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "from labeling.services.storage import retry_delay; "
        "print([int(retry_delay(n).total_seconds()) for n in (1, 2, 3, 4, 9, 5000)])"
    )
    result = start(
        tmp_path, code, DEBUG="1", STORAGE_DELETE_RETRY_FIRST_SECONDS="5", STORAGE_DELETE_RETRY_MAX_SECONDS="30"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[5, 10, 20, 30, 30, 30]"  # doubling, up to the longest

    result = start(tmp_path, DEBUG="1", STORAGE_DELETE_RETRY_FIRST_SECONDS="600", STORAGE_DELETE_RETRY_MAX_SECONDS="60")
    assert result.returncode != 0
    assert "STORAGE_DELETE_RETRY_FIRST_SECONDS=600 must be at least 1 and at most" in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "RUN_FIGURES_REFRESH_SECONDS=0 must be 1 to 3600."), ("soon", "'soon' is not a whole number.")],
)
def test_a_bad_running_run_refresh_interval_is_a_clear_error(tmp_path, value, message):
    result = start(tmp_path, DEBUG="1", RUN_FIGURES_REFRESH_SECONDS=value)
    assert result.returncode != 0 and message in result.stderr


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "kP3v9-QzX7_mR2sLw8YtN4bH6jC1dF5gA0eU-oI9pZ2xV7nM3qW8rT6yK4hJ1",
    "ALLOWED_HOSTS": "policyhub.example.com",
}


def test_check_deploy_reports_nothing_with_only_debug_secret_key_and_allowed_hosts_set(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    ("variable", "warning"),
    [
        ("SECURE_SSL_REDIRECT", "security.W008"),
        ("SECURE_HSTS_SECONDS", "security.W004"),
        ("SESSION_COOKIE_SECURE", "security.W012"),
        ("CSRF_COOKIE_SECURE", "security.W016"),
    ],
)
def test_check_deploy_flags_each_https_setting_turned_off(tmp_path, variable, warning):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, **{variable: "0"})

    assert result.returncode != 0
    assert warning in result.stderr
