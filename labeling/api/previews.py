"""Draft previews over the JSON API (policy owners: a draft is theirs only): start a preview of the saved draft
on the gold set with a teacher config, poll its progress and figures, read the label flips.

The same service as the editor's **Preview on gold set** (``labeling/services/previews.py``): the draft is frozen
as it is now and labelled on the gold pairs, and so is the latest published version with the same config (a
finished score with that config is reused). When the policy has a red-team set, the draft is also red-teamed with
the same config on its newest set (``red_team_set``: another of the policy's sets; ``skip_red_team``: none), and
the preview's read carries that run's summary (``red_team``; the full report is ``GET /redteam/runs/{id}/report``).
No gold set, no draft, an unusable config or another policy's set is a 400 and starts nothing; the same
``Idempotency-Key`` returns the same preview.
"""

from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from policyhub import selectors as policy_selectors
from policyhub.api_root import IDEMPOTENT, ErrorOut, TextIn, require_role
from policyhub.roles import POLICY_OWNER

from .. import selectors, services
from ..evaluation import evaluation_figures
from ..models import DraftPreview, RedTeamSet
from .common import EvaluationOut, policy_or_404, target_precision, teacher_or_404

router = Router(tags=["previews"])


class PreviewIn(TextIn):
    teacher: str | int = Field(description="A teacher config's name or id.")
    red_team_set: int | None = Field(None, description="The red-team set to red-team the draft on; default: newest.")
    skip_red_team: bool = Field(False, description="Gold only: start no red-team run.")


class RateOut(Schema):
    count: int
    total: int = Field(description="Variants decided so far.")
    rate: float | None


class RedTeamSummaryOut(Schema):
    id: int = Field(description="The red-team run (``GET /redteam/runs/{id}/report`` for examples).")
    set: int
    status: str
    finished: bool
    samples_done: int
    samples_total: int
    variants: int
    undecided: int
    attack_success: dict[str, RateOut] = Field(description="Per category.")
    flip_rate: RateOut = Field(description="Protected-attribute variants whose label changed.")
    flip_rate_by_attribute: dict[str, RateOut]
    report_url: str


class PreviewOut(Schema):
    id: int
    policy: str
    draft: int = Field(description="The draft's version number.")
    draft_revision: int = Field(description="The draft revision the preview froze.")
    teacher: str
    published_version: int | None = Field(description="The version compared with; null: gold only.")
    draft_run: int
    published_run: int | None
    red_team_run: int | None = Field(description="The draft's red-team run started with the preview; null: none.")
    gold_pairs: int
    total: int
    draft_done: int = Field(description="Pairs the draft run finished (labeled or failed).")
    draft_failed: int
    published_done: int | None
    compared: int = Field(description="Pairs both runs labeled.")
    flips: int = Field(description="Of those, pairs whose label differs (``…/flips``).")
    finished: bool = Field(description="The gold runs and the red-team run (if any) are all done.")
    stale: str = Field(description="Why the figures no longer describe the draft (it was saved since); '' if not.")
    errors: list[str]
    draft_evaluation: EvaluationOut
    published_evaluation: EvaluationOut | None
    red_team: RedTeamSummaryOut | None = Field(description="Its figures so far; null: no red-team run.")
    needs_relabel: list[int] = Field(
        description="Gold pairs of labels the draft splits that still need a new label (``…/draft/relabel``): "
        "scored on neither side until relabelled."
    )
    created_by: str | None
    created_at: str


class FlipOut(Schema):
    pair_id: int
    member_id: str
    job_id: str
    published_label: str
    draft_label: str
    draft_rationale: str
    gold_label: str | None


def _preview_or_404(policy, preview_id: int) -> DraftPreview:
    preview = (
        DraftPreview.objects.select_related("draft", "teacher_config", "published_version", "created_by", "policy")
        .filter(pk=preview_id, policy=policy)
        .first()
    )
    if preview is None:
        raise HttpError(404, f"{policy.slug} has no preview #{preview_id}.")
    return preview


def _red_team_out(report) -> dict | None:
    if report is None:
        return None
    run = report.run
    return {
        "id": run.pk, "set": run.red_team_set_id, "status": report.status, "finished": report.finished,
        "samples_done": report.samples_done, "samples_total": report.samples_total, "variants": report.variants,
        "undecided": report.undecided,
        "attack_success": {c: f.attack_success.as_dict() for c, f in report.categories.items()},
        "flip_rate": report.flip_rate.as_dict(),
        "flip_rate_by_attribute": {a: r.as_dict() for a, r in report.flip_rate_by_attribute.items()},
        "report_url": reverse("redteam_run", args=[run.pk]),
    }  # fmt: skip


def _out(preview: DraftPreview, target: float) -> dict:
    state = selectors.draft_preview_state(preview=preview, target_precision=target)
    return {
        "id": preview.pk,
        "policy": preview.policy.slug,
        "draft": preview.draft.number,
        "draft_revision": preview.draft_revision,
        "teacher": preview.teacher_config.name,
        "published_version": preview.published_version.number if preview.published_version else None,
        "draft_run": preview.draft_run_id,
        "published_run": preview.published_run_id,
        "red_team_run": preview.red_team_run_id,
        "gold_pairs": preview.gold_pairs,
        **{f: getattr(state, f) for f in ("total", "draft_done", "draft_failed", "published_done", "compared",
                                           "finished", "stale", "errors")},
        "flips": len(state.flips),
        "draft_evaluation": evaluation_figures(state.draft_evaluation),
        "published_evaluation": evaluation_figures(state.published_evaluation) if state.published_evaluation else None,
        "red_team": _red_team_out(state.red_team),
        "needs_relabel": [item.gold.pair_id for item in state.gold.pending] if state.gold else [],
        "created_by": preview.created_by.get_username() if preview.created_by else None,
        "created_at": preview.created_at.isoformat(),
    }  # fmt: skip


@router.post(
    "/policies/{slug}/previews",
    response={200: PreviewOut, 201: PreviewOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    openapi_extra=IDEMPOTENT,
)
def start_preview(request, slug: str, payload: PreviewIn):
    """Preview the saved draft on the gold set with a teacher config, and red-team it on the policy's newest (or
    the chosen) red-team set unless ``skip_red_team`` (201; poll ``GET …/previews/{id}``)."""
    require_role(request, POLICY_OWNER)
    policy = policy_or_404(request, slug)
    config = teacher_or_404(payload.teacher)
    draft = policy_selectors.policy_draft(policy=policy)
    if draft is None:
        raise HttpError(400, "There is no draft to preview: start one from the latest published version.")
    red_team_set = None
    if payload.red_team_set is not None and not payload.skip_red_team:
        red_team_set = RedTeamSet.objects.filter(pk=payload.red_team_set, policy=policy).first()
        if red_team_set is None:
            raise HttpError(400, f"{policy.slug} has no red-team set #{payload.red_team_set}.")
    key = request.headers.get("Idempotency-Key", "")[:200]
    existed = selectors.draft_preview_for_key(user=request.auth, key=key) is not None
    preview = services.draft_preview_start(
        user=request.auth, draft=draft, config=config, idempotency_key=key, red_team_set=red_team_set,
        skip_red_team=payload.skip_red_team,
    )  # fmt: skip
    return Status(200 if existed else 201, _out(_preview_or_404(policy, preview.pk), 0.95))


@router.get(
    "/policies/{slug}/previews/{preview_id}", response={200: PreviewOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut}
)
def get_preview(request, slug: str, preview_id: int, precision: str | None = None):
    """Progress and figures so far, gold and red team (``finished`` once every run is done); ``precision``: 0.5–1,
    default 0.95."""
    require_role(request, POLICY_OWNER)
    target = target_precision(precision)
    policy = policy_or_404(request, slug)
    return _out(_preview_or_404(policy, preview_id), target)


@router.get("/policies/{slug}/previews/{preview_id}/flips", response={200: list[FlipOut], 403: ErrorOut, 404: ErrorOut})
def list_preview_flips(
    request,
    slug: str,
    preview_id: int,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000_000),
):
    """The pairs whose label differs between the published version and the draft so far (published → draft, the
    draft's rationale, gold), by pair id."""
    require_role(request, POLICY_OWNER)
    preview = _preview_or_404(policy_or_404(request, slug), preview_id)
    state = selectors.draft_preview_state(preview=preview, target_precision=0.95)
    return [
        {
            "pair_id": flip.pair.pk,
            "member_id": flip.pair.member.external_id,
            "job_id": flip.pair.job.external_id,
            "published_label": flip.published_label,
            "draft_label": flip.draft_label,
            "draft_rationale": flip.draft_rationale,
            "gold_label": flip.gold_label,
        }
        for flip in state.flips[offset : offset + limit]
    ]
