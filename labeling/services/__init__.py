"""Writes of the labeling app, one module per area; import them from here."""

from .batches import labeling_run_batch_poll, labeling_run_batch_submit
from .imports import (
    ERROR_CAP,
    ImportResult,
    import_batch_create,
    import_batch_run,
    import_file,
    import_stored_run,
    import_upload_enqueue,
)
from .reviews import (
    ReviewError,
    review_adjudicate,
    review_claim_next,
    review_record,
    review_skip,
    review_submit,
    review_undo_last,
)
from .runs import (
    ChunkBusy,
    cache_key,
    label_space,
    labeling_run_cancel,
    labeling_run_chunk_process,
    labeling_run_create,
    labeling_run_fail,
    labeling_run_resume,
    pairs_for_selection,
    teacher_config_save,
)

__all__ = [
    "ReviewError",
    "review_adjudicate",
    "review_claim_next",
    "review_record",
    "review_skip",
    "review_submit",
    "review_undo_last",
    "ChunkBusy",
    "cache_key",
    "label_space",
    "labeling_run_batch_poll",
    "labeling_run_batch_submit",
    "labeling_run_cancel",
    "labeling_run_chunk_process",
    "labeling_run_create",
    "labeling_run_fail",
    "labeling_run_resume",
    "pairs_for_selection",
    "teacher_config_save",
    "ERROR_CAP",
    "ImportResult",
    "import_batch_create",
    "import_batch_run",
    "import_file",
    "import_stored_run",
    "import_upload_enqueue",
]
