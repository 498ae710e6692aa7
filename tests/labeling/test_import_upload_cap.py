"""An upload over IMPORT_MAX_UPLOAD_BYTES is refused with its true size, and at most the cap of it touches the
disk; an upload under the cap is kept whole."""

import os

from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.imports.uploads import CappedUploadHandler
from labeling.models import ImportBatch

CAP = 4000


def _receive(data: bytes, settings, chunk: int = 1000):
    """What Django's parser does with an upload bigger than FILE_UPLOAD_MAX_MEMORY_SIZE."""
    settings.IMPORT_MAX_UPLOAD_BYTES = CAP
    handler = CappedUploadHandler()
    handler.new_file("file", "m.csv", "text/csv", len(data))
    for start in range(0, len(data), chunk):
        handler.receive_data_chunk(data[start : start + chunk], start)
    return handler.file_complete(len(data))


def test_a_large_upload_keeps_its_true_size_but_at_most_the_cap_on_disk(settings):
    upload = _receive(b"x" * 100_000, settings)
    assert upload.size == 100_000
    assert os.path.getsize(upload.temporary_file_path()) == CAP + 1
    upload.close()


def test_an_upload_under_the_cap_is_kept_whole(settings):
    data = os.urandom(CAP)
    upload = _receive(data, settings, chunk=333)
    assert (upload.size, upload.read()) == (CAP, data)
    upload.close()


def test_the_form_refuses_a_large_upload_with_its_true_size(engineer, client_for, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000  # so the upload streams through the capped handler
    settings.IMPORT_MAX_UPLOAD_BYTES = CAP
    data = b"member_id,headline\n" + b"m1,Engineer\n" * 200_000
    response = client_for(engineer).post("/imports/", {"kind": "members", "file": SimpleUploadedFile("big.csv", data)})
    assert response.status_code == 413
    assert f"the file is {len(data) / (1 << 20):,.1f} MB; imports take at most 4,000 bytes" in response.content.decode()
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.file_size, batch.stored_file) == ("failed", len(data), "")
    assert not (tmp_path / "media").exists()  # nothing stored for a worker
