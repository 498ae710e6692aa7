"""Storage settings from the environment: the folders by default with no variable; ``STORAGE_BACKEND=s3`` puts
uploads and exports in the named bucket with its secret read from the environment or a file; bad combinations fail
at start-up with the variable to fix."""

import json

import pytest

from tests.policyhub.test_settings import start

SHOW = (
    "import django, json; from django.conf import settings; django.setup(); "
    "from django.core.files.storage import storages; from exports.storage import exports_storage; "
    "e = exports_storage(); print(json.dumps([settings.STORAGE_BACKEND, type(storages['default']).__name__, "
    "type(e).__name__, getattr(e, 'bucket_name', None), getattr(e, 'location', None), "
    "getattr(e, 'secret_key', None), settings.EXPORT_DOWNLOADS, settings.EXPORT_DOWNLOAD_URL_SECONDS]))"
)


def test_the_folders_are_the_default_with_no_variable(tmp_path):
    result = start(tmp_path, SHOW, DEBUG="1")
    assert result.returncode == 0, result.stderr
    backend, default, exports, *_rest, downloads, seconds = json.loads(result.stdout.splitlines()[-1])
    assert (backend, default, exports, downloads, seconds) == (
        "filesystem", "FileSystemStorage", "FileSystemStorage", "stream", 300,
    )  # fmt: skip


def test_s3_puts_uploads_and_exports_in_the_bucket_with_the_secret_from_a_file(tmp_path):
    secret = tmp_path / "s3-secret"
    secret.write_text("from-a-file\n")
    result = start(
        tmp_path, SHOW, DEBUG="1", STORAGE_BACKEND="s3", AWS_STORAGE_BUCKET_NAME="ph-bucket", AWS_LOCATION="prod/",
        AWS_ACCESS_KEY_ID="AKIA-TEST", AWS_SECRET_ACCESS_KEY_FILE=str(secret), EXPORT_DOWNLOADS="redirect",
        EXPORT_DOWNLOAD_URL_SECONDS="60",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [
        "s3", "S3Storage", "S3Storage", "ph-bucket", "prod/exports", "from-a-file", "redirect", 60,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME"),
        ({"STORAGE_BACKEND": "nfs"}, "STORAGE_BACKEND='nfs': use filesystem (the default) or s3."),
        ({"EXPORT_DOWNLOADS": "redirect"}, "EXPORT_DOWNLOADS=redirect needs STORAGE_BACKEND=s3"),
        ({"EXPORT_DOWNLOADS": "sendfile"}, "EXPORT_DOWNLOADS='sendfile': use stream (the default) or redirect."),
        (
            {"STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": "b", "EXPORT_DOWNLOAD_URL_SECONDS": "0"},
            "EXPORT_DOWNLOAD_URL_SECONDS must be 1 to 604800",
        ),
        (
            {"AWS_S3_PUBLIC_ENDPOINT_URL": "https://files.example.com"},
            "AWS_S3_PUBLIC_ENDPOINT_URL needs STORAGE_BACKEND",
        ),
        (
            {
                "STORAGE_BACKEND": "s3",
                "AWS_STORAGE_BUCKET_NAME": "b",
                "AWS_S3_PUBLIC_ENDPOINT_URL": "files.example.com",
            },
            "AWS_S3_PUBLIC_ENDPOINT_URL='files.example.com': use an http(s) URL",
        ),
    ],
    ids=[
        "s3-without-bucket",
        "unknown-backend",
        "redirect-without-s3",
        "unknown-download-mode",
        "zero-expiry",
        "public-endpoint-without-s3",
        "public-endpoint-not-a-url",
    ],  # fmt: skip
)
def test_bad_storage_settings_refuse_to_start(tmp_path, env, message):
    result = start(tmp_path, DEBUG="1", **env)
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
