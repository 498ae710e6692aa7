"""Review endpoints of the JSON API (annotators): take back one's last review."""

from ninja import Router, Schema

from policyhub.api_root import ErrorOut, require_role
from policyhub.roles import ANNOTATOR

from .. import services

router = Router(tags=["reviews"])


class UndoOut(Schema):
    candidate_id: int
    review_state: str
    reviews_done: int
    claim_expires_at: str


@router.post(
    "/reviews/undo", response={200: UndoOut, 400: ErrorOut, 403: ErrorOut}, operation_id="labeling_api_undo_review"
)
def review_undo(request):
    """Undo the caller's last review (within the undo window; never once the item is adjudicated, gold or exported):
    the item goes back to the caller to review again. A refusal is a 400 whose ``detail`` says why."""
    require_role(request, ANNOTATOR)
    candidate = services.review_undo_last(user=request.auth)
    return {
        "candidate_id": candidate.pk,
        "review_state": candidate.review_state,
        "reviews_done": candidate.reviews_done,
        "claim_expires_at": candidate.claim_expires_at.isoformat(),
    }
