"""``AWS_S3_PUBLIC_ENDPOINT_URL``: with ``EXPORT_DOWNLOADS=redirect``, the presigned URL names the host the user's
browser reaches, not the one the app talks to (``http://minio:9000`` inside a cluster). Here the app reaches the
moto server as ``127.0.0.1`` and users as ``localhost``: the same server under two names. moto does not check
signatures, so the test recomputes the URL's SigV4 query signature (botocore's signer, the URL's own date and
expiry) for the host it names: valid for the public host, and not valid once the host is swapped."""

import hashlib
import urllib.request
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from exports import services
from policyhub import services as policy_services
from tests.s3_server import PREFIX, REGION, s3_fixture, s3_server_fixture  # noqa: F401 - fixtures


def signature_valid(url: str, *, access_key: str, secret_key: str) -> bool:
    """Whether ``url``'s ``X-Amz-Signature`` is the SigV4 signature of a GET of that URL (its host included)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(query)["X-Amz-Signature"]
    unsigned = [(name, value) for name, value in query if name != "X-Amz-Signature"]
    request = AWSRequest(method="GET", url=urlunsplit(parts._replace(query=urlencode(unsigned, quote_via=quote))))
    request.context["timestamp"] = dict(query)["X-Amz-Date"]
    auth = S3SigV4QueryAuth(
        Credentials(access_key, secret_key), "s3", REGION, expires=int(dict(query)["X-Amz-Expires"])
    )
    return auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request) == given


def archive_location(client, engineer, export_run, export) -> str:
    token = policy_services.api_token_create(user=engineer, name="dl").raw
    response = client.get(f"/api/exports/{export.pk}/archive", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 302
    return response["Location"]


@pytest.fixture
def built(export_run, engineer, s3, settings):
    settings.EXPORT_DOWNLOADS = "redirect"
    export, _ = services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    return services.export_build(export_id=export.pk)


@pytest.mark.django_db
def test_download_urls_are_signed_for_the_public_endpoint_and_fetch_the_archive_there(
    export_run, engineer, client, s3, settings, built
):
    internal = urlsplit(s3.endpoint)
    assert internal.hostname == "127.0.0.1"
    public = f"http://localhost:{internal.port}"
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = public
    location = archive_location(client, engineer, export_run, built)
    assert location.startswith(f"{public}/{s3.name}/{PREFIX}/exports/{built.storage_key}/{built.archive_name}?")
    credentials = {"access_key": s3.env["AWS_ACCESS_KEY_ID"], "secret_key": s3.env["AWS_SECRET_ACCESS_KEY"]}
    assert signature_valid(location, **credentials)
    # SigV4 signs the host: the same URL pointed at the internal host (or with another key) is not valid
    assert not signature_valid(location.replace("localhost", "127.0.0.1", 1), **credentials)
    assert not signature_valid(location, access_key=credentials["access_key"], secret_key="another-secret")
    with urllib.request.urlopen(location, timeout=10) as got:  # the browser reaches the bucket by the public name
        data = got.read()
        assert f'filename="{built.archive_name}"' in got.headers["Content-Disposition"]
    assert hashlib.sha256(data).hexdigest() == built.archive_sha256
    # the app itself still talks to the internal endpoint: streaming downloads and verification work as before
    assert services.export_verify(export=built) == []


@pytest.mark.django_db
def test_without_a_public_endpoint_urls_are_signed_for_the_apps_own_endpoint(
    export_run, engineer, client, s3, settings, built
):
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = ""
    location = archive_location(client, engineer, export_run, built)
    assert location.startswith(f"{s3.endpoint}/{s3.name}/")
    assert signature_valid(location, access_key=s3.env["AWS_ACCESS_KEY_ID"], secret_key=s3.env["AWS_SECRET_ACCESS_KEY"])
