"""Writes of the labeling app, one module per area; import them from here."""

from .batches import labeling_run_batch_poll, labeling_run_batch_submit
from .gold import GoldConflict, GoldError, gold_mark, gold_mark_run, gold_remove, gold_score_start
from .imports import (
    ERROR_CAP,
    ImportResult,
    import_batch_create,
    import_batch_fail,
    import_batch_run,
    import_file,
    import_stored_run,
    import_upload_enqueue,
)
from .labelstudio import (
    LabelStudioError,
    LabelStudioNotConfigured,
    LabelStudioUnavailable,
    PullReport,
    PushResult,
    labelstudio_account_link,
    labelstudio_account_unlink,
    labelstudio_pull,
    labelstudio_push,
)
from .previews import draft_preview_start
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
    labeling_run_cancel,
    labeling_run_check_judge,
    labeling_run_chunk_process,
    labeling_run_create,
    labeling_run_fail,
    labeling_run_resume,
)
from .teachers import teacher_config_save

__all__ = [
    "GoldConflict",
    "GoldError",
    "draft_preview_start",
    "gold_mark",
    "gold_mark_run",
    "gold_remove",
    "gold_score_start",
    "LabelStudioError",
    "LabelStudioNotConfigured",
    "LabelStudioUnavailable",
    "PullReport",
    "PushResult",
    "labelstudio_account_link",
    "labelstudio_account_unlink",
    "labelstudio_pull",
    "labelstudio_push",
    "ReviewError",
    "review_adjudicate",
    "review_claim_next",
    "review_record",
    "review_skip",
    "review_submit",
    "review_undo_last",
    "ChunkBusy",
    "labeling_run_batch_poll",
    "labeling_run_batch_submit",
    "labeling_run_cancel",
    "labeling_run_check_judge",
    "labeling_run_chunk_process",
    "labeling_run_create",
    "labeling_run_fail",
    "labeling_run_resume",
    "teacher_config_save",
    "ERROR_CAP",
    "ImportResult",
    "import_batch_create",
    "import_batch_fail",
    "import_batch_run",
    "import_file",
    "import_stored_run",
    "import_upload_enqueue",
]
