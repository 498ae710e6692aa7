"""A real S3-compatible server for the storage tests: moto in server mode on a free port of 127.0.0.1, reached over
HTTP by the app (django-storages, boto3) in this process and by the Celery workers the tests start.

``s3`` points this process's uploads and exports at a fresh bucket (``STORAGE_BACKEND=s3`` as the settings
build it) and gives the environment a worker needs for the same bucket. Import the fixtures into a test module:
``from tests.s3_server import s3_fixture, s3_server_fixture  # noqa: F401``.
"""

import hashlib
import logging
import uuid
from dataclasses import dataclass, field

import boto3
import pytest
from moto.server import ThreadedMotoServer

from policyhub.settings import s3_storages

REGION = "us-east-1"
PREFIX = "ph"  # AWS_LOCATION: every object of the app lives under it


@pytest.fixture(scope="session", name="s3_server")
def s3_server_fixture():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request is noise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Bucket:
    endpoint: str
    name: str
    env: dict  # what a worker's environment needs to use this bucket
    client: object = field(repr=False)

    def keys(self, under: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=f"{PREFIX}/{under}")
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def head(self, key: str) -> dict:
        return self.client.head_object(Bucket=self.name, Key=key)

    def sha256(self, key: str) -> str:
        return hashlib.sha256(self.get(key)).hexdigest()


@pytest.fixture(name="s3")
def s3_fixture(s3_server, settings, tmp_path) -> Bucket:
    """A new bucket, with this process's default (uploads) and exports storages in it. MEDIA_ROOT and EXPORTS_ROOT
    point at folders of their own, so a test can show nothing shared lands on disk."""
    return _bucket_at(s3_server, settings, tmp_path)


class StoppableS3:
    """A moto server of its own for one test, to stop (an outage: connections refused) and start again on the same
    port (moto keeps its buckets in this process, so they are all there again)."""

    def __init__(self, port: int = 0):
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        self.host, self.port = self.server.get_host_and_port()
        self.endpoint = f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()


@pytest.fixture(name="s3_outage")
def s3_outage_fixture(settings, tmp_path, monkeypatch):
    """(the server, a bucket in it with this process's storages): ``server.stop()`` makes the object store
    unreachable. boto3 tries each call once (``AWS_MAX_ATTEMPTS``), so an outage shows in milliseconds."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    server = StoppableS3()
    try:
        yield server, _bucket_at(server.endpoint, settings, tmp_path)
    finally:
        server.stop()


def _bucket_at(s3_server: str, settings, tmp_path) -> Bucket:
    name = f"policyhub-{uuid.uuid4().hex[:12]}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing-secret"}
    client = boto3.client("s3", endpoint_url=s3_server, region_name=REGION, **credentials)
    client.create_bucket(Bucket=name)
    env = {
        "STORAGE_BACKEND": "s3",
        "AWS_STORAGE_BUCKET_NAME": name,
        "AWS_S3_ENDPOINT_URL": s3_server,
        "AWS_S3_REGION_NAME": REGION,
        "AWS_S3_ADDRESSING_STYLE": "path",
        "AWS_LOCATION": PREFIX,
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
        "MEDIA_ROOT": str(tmp_path / "worker-media"),
        "POLICYHUB_EXPORTS_DIR": str(tmp_path / "worker-build"),
    }
    settings.STORAGES = {
        **settings.STORAGES,
        **s3_storages(
            bucket=name, endpoint_url=s3_server, region=REGION, prefix=PREFIX, addressing_style="path",
            access_key=credentials["aws_access_key_id"], secret_key=credentials["aws_secret_access_key"],
        ),
    }  # fmt: skip
    settings.STORAGE_BACKEND = "s3"
    settings.MEDIA_ROOT = tmp_path / "web-media"
    settings.EXPORTS_ROOT = tmp_path / "web-build"
    return Bucket(s3_server, name, env, client)
