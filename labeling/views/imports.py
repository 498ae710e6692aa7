"""Browser views for imports: upload members, jobs or pairs and follow an import (ML engineers)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from policyhub.roles import ML_ENGINEER, role_required

from .. import selectors, services
from ..forms import ImportForm
from ..imports.schemas import SCHEMAS
from ..models import ImportBatch


@role_required(ML_ENGINEER)
@require_http_methods(["GET", "POST"])
def import_list(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    status = 400 if form.errors else 200
    if request.method == "POST" and form.is_valid():
        result = services.import_upload_enqueue(
            kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"], user=request.user
        )
        if not (result.refused or result.not_stored):
            if result.already_imported:
                messages.info(request, result.summary())
            else:
                messages.success(request, f"{result.batch.source_name} is queued for import.")
            return redirect("import_detail", pk=result.batch.pk)
        form.add_error("file", f"{result.summary()} (recorded as import #{result.batch.pk})")
        status = 503 if result.not_stored else 413
    return render(
        request,
        "labeling/import_list.html",
        {
            "form": form,
            "batches": selectors.import_batch_list(),
            "counts": selectors.dataset_counts(),
            "schemas": SCHEMAS,
        },
        status=status,
    )


@role_required(ML_ENGINEER)
def import_detail(request, pk):
    try:
        batch = selectors.import_batch_get(pk=pk)
    except ImportBatch.DoesNotExist:
        raise Http404(f"No import #{pk}.") from None
    template = "labeling/_import_status.html" if request.headers.get("HX-Request") else "labeling/import_detail.html"
    return render(request, template, {"batch": batch})
