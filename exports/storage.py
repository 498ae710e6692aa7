"""Where built exports live: Django's storage API, a folder by default (``EXPORTS_ROOT``) or an S3-compatible bucket
(``STORAGE_BACKEND=s3``: ``STORAGES["exports"]``) when web and workers run on different machines.

A build writes its files into a local staging folder first; :func:`publish` then makes them the export's in one
step that never exposes a half-written file and never overwrites one:

- **folder**: the staging folder is renamed to ``<export id>/`` (one atomic rename, as before);
- **object store**: every file is uploaded under a key of its own build, ``<export id>/<build token>/<name>`` (a
  rebuild after a crash gets a new token, so it never writes over an earlier attempt's objects, let alone a built
  export's), read back and compared with the sha256 and size the manifest records, and its ETag kept. An S3 put
  is atomic (a multipart upload appears only once completed), and the export points at the key only when every
  object is there and verified; a failed upload removes what it wrote.

An object store that cannot be reached or answers with its own trouble (5xx, throttling) is
:class:`StorageUnavailable`, never a 500 or "tampered": downloads answer 503 with the reason, a build is retried
later by its task (``policyhub.jobs``) and, if the store stays down, fails with the reason, nothing published.

Reads check the stored object against the build: its size (and on an object store its ETag) must be the one
recorded, else the file was changed or replaced behind the app's back and :class:`Tampered` says so, nothing
served. :func:`verify` reads every object in full and compares sha256.
"""

import contextlib
import hashlib
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore.exceptions
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

BLOCK = 256 * 1024


class Tampered(Exception):
    """A stored file no longer is the one the build wrote (or is gone)."""


class StorageUnavailable(ConnectionError):
    """The object store cannot be reached or is failing right now: nothing is wrong with the file; try later. A
    ``ConnectionError``, so the job tasks retry it (``policyhub.jobs.TRANSIENT_ERRORS``)."""


#: botocore's "could not connect / the connection dropped or timed out" (after its own retries).
UNREACHABLE = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)
_SERVER_TROUBLE = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "503", "500", "502", "504"}


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the object store is down or in trouble (not that a request or a file is wrong)."""
    if isinstance(error, UNREACHABLE):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return str(error.response.get("Error", {}).get("Code")) in _SERVER_TROUBLE or status >= 500
    return False


def unavailable(storage: Storage, key: str, error: BaseException) -> StorageUnavailable:
    detail = " ".join(str(error).split())[:500]
    return StorageUnavailable(f"the object store holding {location(storage, key)} is unavailable right now "
                              f"({type(error).__name__}: {detail}); try again later")  # fmt: skip


def exports_storage() -> Storage:
    """``STORAGES["exports"]`` when configured (an object store), else the folder ``EXPORTS_ROOT`` (read on each
    call: tests and commands may point it elsewhere)."""
    if "exports" in settings.STORAGES:
        return storages["exports"]
    return FileSystemStorage(location=settings.EXPORTS_ROOT)


def is_folder(storage: Storage) -> bool:
    return isinstance(storage, FileSystemStorage)


def is_object_store(storage: Storage) -> bool:
    return hasattr(storage, "bucket") and hasattr(storage, "connection")  # django-storages' S3Storage


def location(storage: Storage, key: str) -> str:
    """Where a key is, for people: a folder path or ``s3://bucket/prefix/key``."""
    if is_folder(storage):
        return storage.path(key)
    if is_object_store(storage):
        prefix = f"{storage.location.strip('/')}/" if storage.location.strip("/") else ""
        return f"s3://{storage.bucket_name}/{prefix}{key}"
    return key


def public_signer(storage: Storage):
    """A boto3 client of ``storage``'s credentials, region and signature settings whose endpoint is
    ``AWS_S3_PUBLIC_ENDPOINT_URL``: it only signs download URLs (no request goes through it), so a URL names the
    host the user's browser reaches (``https://files.example.com``), not the one the app does (``http://minio:9000``).
    SigV4 signs the host, so a URL signed for one cannot be rewritten to the other. One per storage instance."""
    signer = getattr(storage, "_policyhub_public_signer", None)
    if signer is None or signer.meta.endpoint_url != settings.AWS_S3_PUBLIC_ENDPOINT_URL.rstrip("/"):
        signer = storage._create_session().client(  # django-storages' session: the storage's own credentials
            "s3", region_name=storage.region_name, endpoint_url=settings.AWS_S3_PUBLIC_ENDPOINT_URL,
            config=storage.client_config,
        )  # fmt: skip
        storage._policyhub_public_signer = signer
    return signer


def _sha256_of(chunks: Iterator[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for block in chunks:
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def publish(storage: Storage, staging: Path, key: str, files: dict[str, tuple[str, int]]) -> dict[str, str]:
    """Make the built files in ``staging`` the export's, under ``key``; ``files`` maps each name to its (sha256,
    size). Returns each name's ETag on an object store (empty on a folder). On any failure nothing under ``key``
    is left and the error is raised."""
    if is_folder(storage):
        staging.rename(storage.path(key))  # one atomic step; fails if the folder exists (never overwritten)
        return {}
    etags: dict[str, str] = {}
    written: list[str] = []  # only what this call stored is removed on failure, never an object found there
    try:
        for name, (sha256, size) in files.items():
            target = f"{key}/{name}"
            if storage.exists(target):
                raise FileExistsError(f"{location(storage, target)} exists already: an export's files are never "
                                      "overwritten")  # fmt: skip
            with open(staging / name, "rb") as handle:
                saved = storage.save(target, File(handle, name=name))
            if saved != target:  # the storage chose another name because the key appeared meanwhile
                remove(storage, key, [saved.removeprefix(f"{key}/")])
                raise FileExistsError(f"{location(storage, target)} appeared during the upload: not overwritten")
            written.append(name)
            stored = StoredFile.open(storage, target, size=size, etag="")
            got = _sha256_of(stored.chunks())
            if got != (sha256, size):
                raise Tampered(f"{location(storage, target)} reads back as sha256 {got[0]} ({got[1]} bytes), not the "
                               f"{sha256} ({size} bytes) built: the upload was corrupted")  # fmt: skip
            etags[name] = stored.etag
    except BaseException:
        remove(storage, key, written)
        raise
    return etags


def remove(storage: Storage, key: str, names: list[str]) -> None:
    """Delete an export's files under ``key`` (every file of its folder, and the folder, on a folder storage). A
    file that cannot be deleted now (the store is down, the disk refuses) never stops the caller: its deletion is
    recorded, in the caller's transaction, and the watchdog's sweep deletes it later (``labeling.services.storage``,
    which also removes a folder it leaves empty). ``storage`` is the exports storage (:func:`exports_storage`)."""
    # imported here, not above: that module (the one deletion mechanism of every storage) imports this one
    from labeling.services.storage import storage_delete_or_defer

    if is_folder(storage):
        folder = Path(storage.path(key))
        if not folder.exists():
            return
        files = [path for path in folder.iterdir() if not path.is_dir()]  # a build's folder is flat
        for path in files:
            with contextlib.suppress(OSError):
                path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        names = [path.name for path in files]
    if not storage_delete_or_defer(names=[f"{key}/{name}" for name in names], storage="exports"):
        remove_empty_folder(storage, key)  # a folder storage's; nothing to do on an object store


def remove_empty_folder(storage: Storage, key: str) -> None:
    """On a folder storage, remove the folder ``key`` if nothing is left in it (else leave it)."""
    if is_folder(storage):
        with contextlib.suppress(OSError):  # not empty, or gone already
            Path(storage.path(key)).rmdir()


def check_available(storage: Storage) -> None:
    """:class:`StorageUnavailable` unless the object store answers (one HEAD of the bucket); a folder always does."""
    if not is_object_store(storage):
        return
    try:
        storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)
    except (ClientError, *UNREACHABLE) as error:
        if is_outage(error):
            raise unavailable(storage, "", error) from error
        # anything else (a 403 for credentials without s3:ListBucket, say) is the build's to report, with its reason


def remove_other_builds(storage: Storage, export_id: int, keep: str) -> None:
    """On an object store, delete what earlier, unfinished builds of an export uploaded (other tokens under
    ``<export id>/``); ``keep`` is this build's key. Nothing of them was ever referenced by the export."""
    if is_folder(storage) or not is_object_store(storage):
        return
    builds, _files = storage.listdir(f"{export_id}/")
    for build in builds:
        if f"{export_id}/{build}" == keep:
            continue
        _dirs, names = storage.listdir(f"{export_id}/{build}/")
        remove(storage, f"{export_id}/{build}", names)


@dataclass
class StoredFile:
    """One stored file of a built export, opened for reading after checking it is still the one built."""

    storage: Storage
    key: str
    size: int
    etag: str
    handle: object

    @classmethod
    def open(cls, storage: Storage, key: str, *, size: int | None, etag: str) -> "StoredFile":
        """Open ``key``; :class:`Tampered` if it is missing, its size is not ``size`` (when given) or, on an object
        store, its ETag is not ``etag`` (when given)."""
        try:
            handle = storage.open(key, "rb")
        except FileNotFoundError:
            raise Tampered(f"{location(storage, key)} is missing") from None
        except (ClientError, *UNREACHABLE) as error:  # 404: a missing object; 5xx, no connection: the store's trouble
            if is_outage(error):
                raise unavailable(storage, key, error) from error
            if not isinstance(error, ClientError) or error.response.get("Error", {}).get("Code") not in (
                "404", "NoSuchKey", "NotFound",
            ):  # fmt: skip
                raise
            raise Tampered(f"{location(storage, key)} is missing") from None
        obj = getattr(handle, "obj", None)  # S3File: the boto3 Object, loaded (HEAD) by open()
        actual_size = obj.content_length if obj is not None else handle.size
        actual_etag = obj.e_tag if obj is not None else ""
        problem = ""
        if size is not None and actual_size != size:
            problem = f"it is {actual_size} bytes, the build wrote {size}"
        elif etag and actual_etag != etag:
            problem = f"its ETag is {actual_etag}, the build's was {etag}"
        if problem:
            handle.close()
            raise Tampered(f"{location(storage, key)} was changed after the export was built: {problem}")
        return cls(storage, key, actual_size, actual_etag, handle)

    @property
    def local_file(self):
        """The open file on disk (a folder storage), for ``FileResponse``'s zero-copy path; else None."""
        return self.handle.file if is_folder(self.storage) else None

    def chunks(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The bytes ``start`` … ``start + length - 1`` (to the end without ``length``), in blocks. On an object
        store one ranged GET that only answers while the object is still the one opened (``If-Match``)."""
        length = self.size - start if length is None else length
        if length <= 0:
            self.close()
            return
        try:
            obj = getattr(self.handle, "obj", None)
            if obj is not None:
                extra = {"IfMatch": self.etag} if self.etag else {}
                body = obj.get(Range=f"bytes={start}-{start + length - 1}", **extra)["Body"]
                try:
                    yield from body.iter_chunks(BLOCK)
                finally:
                    body.close()
                return
            self.handle.seek(start)
            while length > 0:
                block = self.handle.read(min(BLOCK, length))
                if not block:
                    return
                length -= len(block)
                yield block
        finally:
            self.close()

    def read_text(self) -> str:
        return b"".join(self.chunks()).decode("utf-8")

    def presigned_url(self, *, filename: str, content_type: str) -> str | None:
        """A short-lived URL (``EXPORT_DOWNLOAD_URL_SECONDS``) the client fetches the object from directly, saved as
        ``filename``; None where the storage has none (a folder)."""
        if not is_object_store(self.storage):
            return None
        self.close()
        parameters = {
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": content_type,
        }
        if not settings.AWS_S3_PUBLIC_ENDPOINT_URL:
            return self.storage.url(self.key, parameters=parameters, expire=settings.EXPORT_DOWNLOAD_URL_SECONDS)
        return public_signer(self.storage).generate_presigned_url(
            "get_object",
            Params={"Bucket": self.storage.bucket_name, "Key": self.storage._normalize_name(self.key), **parameters},
            ExpiresIn=settings.EXPORT_DOWNLOAD_URL_SECONDS,
        )

    def close(self) -> None:
        self.handle.close()


def verify(storage: Storage, key: str, files: list[dict], etags: dict[str, str]) -> list[str]:
    """Read every file in full and compare it with what the build recorded (``files``: the manifest's name,
    size, sha256); returns the problems found, none when the export is intact."""
    problems = []
    for entry in files:
        try:
            stored = StoredFile.open(storage, f"{key}/{entry['name']}", size=entry["size"],
                                     etag=etags.get(entry["name"], ""))  # fmt: skip
        except Tampered as error:
            problems.append(str(error))
            continue
        sha256, _size = _sha256_of(stored.chunks())
        if sha256 != entry["sha256"]:
            problems.append(f"{location(storage, stored.key)} has sha256 {sha256}, the build wrote {entry['sha256']}")
    return problems
