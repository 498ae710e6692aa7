"""Uploads go to disk at most ``IMPORT_MAX_UPLOAD_BYTES`` (+1) bytes a file: the rest of a larger file is read and
dropped, so a huge upload cannot fill the disk, while its size stays the true one. ``import_batch_create`` refuses
a file over the cap by that size without reading it, so a cut-off file is never imported."""

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler


class CappedUploadHandler(TemporaryFileUploadHandler):
    def receive_data_chunk(self, raw_data, start):
        room = settings.IMPORT_MAX_UPLOAD_BYTES + 1 - start
        if room > 0:
            self.file.write(raw_data[:room])
