"""Export pages (ML engineers): list, create, detail with the dataset card and live progress, downloads, delete."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from labeling.selectors.students import student_list
from policyhub.markdown import render_markdown
from policyhub.roles import ML_ENGINEER, role_required

from . import selectors, services
from .downloads import file_response
from .forms import ExportForm
from .models import DatasetExport
from .selection import ExportError


def _get(pk) -> DatasetExport:
    try:
        return selectors.export_get(pk=pk)
    except DatasetExport.DoesNotExist:
        raise Http404(f"No export #{pk}.") from None


@role_required(ML_ENGINEER)
def export_list(request):
    return render(request, "exports/export_list.html", {"exports": selectors.export_list()})


@role_required(ML_ENGINEER)
def export_new(request):
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            export, _created = services.export_create(
                user=request.user, version=form.cleaned_data["version"], runs=list(form.cleaned_data["runs"]),
                filters=form.filters(), split=form.split(),
            )  # fmt: skip
        except ExportError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
            if error.field == "storage":  # not the form's fault: the object store is down
                return render(request, "exports/export_new.html", {"form": form}, status=503)
        else:
            messages.success(request, f"Export #{export.pk} is building.")
            return redirect("export_detail", pk=export.pk)
    return render(request, "exports/export_new.html", {"form": form}, status=400 if form.errors else 200)


@role_required(ML_ENGINEER)
def export_detail(request, pk):
    export = _get(pk)
    context = {"export": export}
    if request.headers.get("HX-Request"):
        response = render(request, "exports/_export_status.html", context)
        if not export.is_active:  # it just finished: load the page once for the card and the files
            response["HX-Refresh"] = "true"
        return response
    context["students"] = student_list(export_id=export.pk)
    if export.is_ready:
        try:
            context["card_html"] = render_markdown(services.export_read_text(export, "README.md"))
        except ExportError as error:  # the stored card is gone or was changed: say so instead of showing it
            context["card_error"] = error.message
        context["split_chart"] = selectors.export_split_chart(export=export)
    return render(request, "exports/export_detail.html", context)


@role_required(ML_ENGINEER)
def export_download(request, pk, name):
    try:
        download = services.export_download(_get(pk), name)
    except ExportError as error:
        if error.field == "integrity":
            return HttpResponse(error.message, status=409, content_type="text/plain; charset=utf-8")
        if error.field == "storage":
            return render(request, "exports/storage_unavailable.html", {"message": error.message, "pk": pk}, status=503)
        raise Http404(error.message) from None
    return file_response(request, download.file, filename=download.filename, etag=download.etag)


@role_required(ML_ENGINEER)
@require_POST
def export_delete(request, pk):
    export = _get(pk)
    try:
        services.export_delete(export=export, user=request.user)
    except ExportError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Export #{export.pk} deleted: its files are gone, this record stays.")
    return redirect("export_detail", pk=pk)
