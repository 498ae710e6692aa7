"""Student pages (ML engineers and policy owners): import predictions, the list, one student's report and
queueing its disagreements for review."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from policyhub.roles import ML_ENGINEER, POLICY_OWNER, role_required

from ..evaluation import parse_target_precision
from ..forms import StudentImportForm
from ..models import StudentEvaluation
from ..selectors import students as selectors
from ..services import students as services

ROLES = (ML_ENGINEER, POLICY_OWNER)


def _get(pk) -> StudentEvaluation:
    try:
        return selectors.student_get(pk=pk)
    except StudentEvaluation.DoesNotExist:
        raise Http404(f"No student evaluation #{pk}.") from None


@role_required(*ROLES)
@require_http_methods(["GET", "POST"])
def student_list(request):
    form = StudentImportForm(request.POST or None, request.FILES or None, initial={"export": request.GET.get("export")})
    result = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = services.student_upload_enqueue(
                user=request.user, export=data["export"], upload=data["file"], student_name=data["student_name"],
                student_version=data["student_version"],
            )  # fmt: skip
        except services.StudentError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            if result.evaluation is not None:  # its page follows the import (failed: with the reason)
                if result.ok:
                    messages.success(request, result.summary())
                return redirect("student_detail", pk=result.evaluation.pk)
    status = 400 if form.errors or (result and not result.ok) else 200
    if result and result.too_large:
        status = 413
    context = {"form": form, "result": result, "evaluations": selectors.student_list()}
    return render(request, "labeling/student_list.html", context, status=status)


@role_required(*ROLES)
def student_detail(request, pk):
    evaluation = _get(pk)
    polled = request.headers.get("HX-Request")
    if not evaluation.is_ready:  # the import's state, polled (htmx) until it is finished
        template = "labeling/_import_status.html" if polled else "labeling/student_detail.html"
        poll_url = reverse("student_detail", args=[pk])
        return render(request, template, {"evaluation": evaluation, "batch": evaluation.import_batch,
                                          "poll_url": poll_url})  # fmt: skip
    if polled:  # it became ready while the page polled: show the whole report
        return HttpResponse(headers={"HX-Refresh": "true"})
    try:
        precision = parse_target_precision(request.GET.get("precision"))
    except ValueError as error:
        messages.error(request, str(error))
        precision = parse_target_precision(None)
    report = selectors.student_report(evaluation=evaluation, target_precision=precision)
    context = {
        "evaluation": evaluation,
        "report": report,
        "figures": selectors.student_figures(report),
        "disagreements": selectors.student_disagreements(evaluation=evaluation, against="either")[:50],
        "against_choices": services.AGAINST,
    }
    return render(request, "labeling/student_detail.html", context)


@role_required(*ROLES)
@require_POST
def student_queue(request, pk):
    evaluation = _get(pk)
    raw_limit = (request.POST.get("limit") or "").strip()
    try:
        limit = int(raw_limit) if raw_limit else None
        result = services.student_disagreements_queue(
            user=request.user, evaluation=evaluation, against=request.POST.get("against", "teacher"), limit=limit
        )
    except ValueError as error:  # StudentError, or a limit that is not a number
        message = error.message if isinstance(error, services.StudentError) else "limit must be a whole number."
        messages.error(request, message)
    else:
        messages.success(request, result.summary())
    return redirect("student_detail", pk=pk)
