"""Browser views for the draft preview on the gold set (policy owners: drafts are theirs only).

The policy editor loads ``draft_preview_panel`` (htmx) to offer "Preview on gold set"; the preview page polls its
progress partial every second while the runs are going and stops when they are done."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from policyhub import selectors as policy_selectors
from policyhub.roles import POLICY_OWNER, role_required

from .. import selectors, services
from ..models import DraftPreview, TeacherConfig
from .common import target_precision


def _panel_context(policy, draft, error: str = "", chosen: str = "") -> dict:
    return {
        "policy": policy,
        "draft": draft,
        "configs": selectors.teacher_config_list(),
        "gold_total": policy.gold_labels.count(),
        "previews": selectors.draft_previews(draft=draft) if draft else [],
        "error": error,
        "chosen": chosen,
    }


@role_required(POLICY_OWNER)
@require_GET
def draft_preview_panel(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    draft = policy_selectors.policy_draft(policy=policy)
    return render(request, "labeling/_draft_preview_panel.html", _panel_context(policy, draft))


@role_required(POLICY_OWNER)
@require_POST
def draft_preview_start(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    draft = policy_selectors.policy_draft(policy=policy)
    config = TeacherConfig.objects.filter(pk=request.POST.get("config") or 0).first()
    if draft is None:
        error = "There is no draft to preview: start one from the latest published version."
    elif config is None:
        error = "Choose a teacher config to label the gold set with."
    else:
        try:
            preview = services.draft_preview_start(user=request.user, draft=draft, config=config)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Previewing draft v{draft.number} on {preview.gold_pairs} gold pairs.")
            return redirect("preview", slug=slug, pk=preview.pk)
    context = _panel_context(policy, draft, error=error, chosen=request.POST.get("config", ""))
    return render(request, "labeling/draft_preview_start.html", context, status=400)


@role_required(POLICY_OWNER)
@require_GET
def draft_preview_detail(request, slug, pk):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    preview = (
        DraftPreview.objects.select_related("draft", "teacher_config", "published_version", "created_by", "policy")
        .filter(pk=pk, policy=policy)
        .first()
    )
    if preview is None:
        raise Http404(f"{policy.slug} has no preview #{pk}.")
    target, precision_error = target_precision(request)
    context = {
        "policy": policy,
        "state": selectors.draft_preview_state(preview=preview, target_precision=target),
        "precision_error": precision_error,
        "truth_name": "gold",
    }
    if request.headers.get("HX-Request"):
        return render(request, "labeling/_draft_preview_progress.html", context)
    return render(request, "labeling/draft_preview.html", context)
