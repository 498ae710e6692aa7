"""Browser views for the draft preview on the gold set (policy owners: drafts are theirs only).

The policy editor loads ``draft_preview_panel`` (htmx) to offer "Preview on gold set" (and "Plan", a dry run showing
the gold and red-team requests, tokens and cost side by side); the preview page polls its
progress partial every second while the runs are going (the red-team run's too) and stops when they are done."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from policyhub import selectors as policy_selectors
from policyhub.roles import POLICY_OWNER, role_required

from .. import selectors, services
from ..models import DraftPreview, RedTeamSet, TeacherConfig
from .common import target_precision

SKIP = "skip"


def _panel_context(policy, draft, error: str = "", chosen: str = "", chosen_set: str = "") -> dict:
    return {
        "policy": policy,
        "draft": draft,
        "configs": selectors.teacher_config_list(),
        "gold_total": policy.gold_labels.count(),
        "previews": selectors.draft_previews(draft=draft) if draft else [],
        "red_team_sets": policy.red_team_sets.order_by("-created_at", "-id"),
        "error": error,
        "chosen": chosen,
        "chosen_set": chosen_set,
    }


def _red_team_choice(policy, value: str) -> tuple[RedTeamSet | None, bool, str]:
    """(the chosen set or None for the newest, skip, an error) from the form's ``red_team_set``."""
    if value == SKIP:
        return None, True, ""
    if not value:
        return None, False, ""
    chosen = (
        RedTeamSet.objects.filter(pk=int(value), policy=policy).first() if value.isdigit() and len(value) < 19 else None
    )
    return chosen, False, "" if chosen else f"{policy.slug} has no red-team set {value!r}: choose one of the list."


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
    chosen_set = request.POST.get("red_team_set", "").strip()
    red_team_set, skip, error = _red_team_choice(policy, chosen_set)
    if draft is None:
        error = "There is no draft to preview: start one from the latest published version."
    elif config is None:
        error = "Choose a teacher config to label the gold set with."
    elif not error and "plan" in request.POST:  # a dry run: the gold and red-team plans, nothing started
        plan = selectors.draft_preview_plan(user=request.user, draft=draft, config=config, red_team_set=red_team_set,
                                            skip_red_team=skip)  # fmt: skip
        context = _panel_context(policy, draft, chosen=str(config.pk), chosen_set=chosen_set) | {"plan": plan}
        return render(request, "labeling/draft_preview_start.html", context)
    elif not error:
        try:
            preview = services.draft_preview_start(
                user=request.user, draft=draft, config=config, red_team_set=red_team_set, skip_red_team=skip
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            also = f" and red-teaming it on set #{preview.red_team_run.red_team_set_id}" if preview.red_team_run else ""
            messages.success(request, f"Previewing draft v{draft.number} on {preview.gold_pairs} gold pairs{also}.")
            return redirect("preview", slug=slug, pk=preview.pk)
    context = _panel_context(policy, draft, error=error, chosen=request.POST.get("config", ""), chosen_set=chosen_set)
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
