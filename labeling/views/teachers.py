"""Browser view for teacher configs: the list and the form to add or edit one (ML engineers)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from policyhub.roles import ML_ENGINEER, role_required

from .. import selectors, services
from ..forms import TeacherConfigForm
from ..models import TeacherConfig


@role_required(ML_ENGINEER)
@require_http_methods(["GET", "POST"])
def teacher_list(request, pk=None):
    config = get_object_or_404(TeacherConfig, pk=pk) if pk else None
    form = TeacherConfigForm(request.POST or None, instance=config)
    if request.method == "POST" and form.is_valid():
        saved = services.teacher_config_save(config=form.save(commit=False), user=request.user)
        messages.success(request, f"Saved teacher config {saved.name}.")
        return redirect("teacher_list")
    return render(
        request,
        "labeling/teacher_list.html",
        {
            "form": form,
            "editing": config,
            "configs": selectors.teacher_config_list(),
            "changes": selectors.teacher_config_changes(config) if config else [],
            "key_names": selectors.teacher_key_names(),
        },  # fmt: skip
        status=400 if form.errors else 200,
    )
