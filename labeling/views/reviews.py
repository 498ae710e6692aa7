"""Browser views for human review: the annotators' queue (one item at a time, htmx) and the policy owners'
adjudication queue. Parse, check the role, call the review service, render."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from policyhub.roles import ANNOTATOR, POLICY_OWNER, role_required

from .. import selectors, services
from ..models import Candidate
from ..selectors import reviews as review_selectors
from .feedback import flag_box


def _filters(data) -> dict:
    run = data.get("run", "")
    reason = data.get("reason", "")
    return {
        "run_id": int(run) if run.isdigit() else None,
        "reason": reason if reason in Candidate.REASONS else "",
    }


def _queue_url(filters: dict) -> str:
    query = {"run": filters["run_id"] or "", "reason": filters["reason"]}
    query = {key: value for key, value in query.items() if value}
    return reverse("review_queue") + (f"?{urlencode(query)}" if query else "")


def _item_context(request, filters: dict, *, candidate=None, error: str = "", info: str = "", note: str = "") -> dict:
    """The item to show: ``candidate`` (after an undo) or the one this annotator holds or claims next."""
    if candidate is None:
        candidate = services.review_claim_next(user=request.user, run_id=filters["run_id"], reason=filters["reason"])
    cap = review_selectors.QUEUE_COUNT_CAP  # read where it is defined, so that patching it there takes effect
    return {
        "item": selectors.review_item(candidate=candidate) if candidate else None,
        "flag": flag_box(user=request.user, candidate=candidate) if candidate else None,
        "filters": filters,
        "waiting": selectors.review_queue_count(user=request.user, cap=cap, **filters),
        "waiting_cap": cap,
        "error": error,
        "info": info,
        "note": note,
    }


def _respond(request, filters: dict, *, status: int = 200, **kwargs):
    """htmx: the next item's partial (errors shown in it). Otherwise back to the queue page with a message."""
    if request.headers.get("HX-Request"):
        context = _item_context(request, filters, **kwargs)
        return render(request, "labeling/_review_item.html", context, status=status)
    if kwargs.get("error"):
        messages.error(request, kwargs["error"])
    elif kwargs.get("info"):
        messages.info(request, kwargs["info"])
    return redirect(_queue_url(filters))


@role_required(ANNOTATOR)
@require_GET
def review_queue(request):
    filters = _filters(request.GET)
    context = _item_context(request, filters)
    if request.headers.get("HX-Request"):
        return render(request, "labeling/_review_item.html", context)
    context["runs"] = selectors.review_runs()
    context["reasons"] = Candidate.REASONS
    return render(request, "labeling/review_queue.html", context)


@role_required(ANNOTATOR)
@require_POST
def review_submit(request, pk):
    filters = _filters(request.POST)
    label, note = request.POST.get("label", ""), request.POST.get("note", "")
    try:
        services.review_submit(user=request.user, candidate_id=pk, label=label, note=note)
    except services.ReviewError as error:
        return _respond(request, filters, status=400, error=" ".join(error.messages), note=note)
    return _respond(request, filters, info=f"Saved {label} for item #{pk}. Press u to undo.")


@role_required(ANNOTATOR)
@require_POST
def review_skip(request, pk):
    filters = _filters(request.POST)
    try:
        services.review_skip(user=request.user, candidate_id=pk)
    except services.ReviewError as error:
        return _respond(request, filters, status=400, error=" ".join(error.messages))
    return _respond(request, filters, info=f"Skipped item #{pk}; it will not be offered to you again.")


@role_required(ANNOTATOR)
@require_POST
def review_undo(request):
    filters = _filters(request.POST)
    try:
        candidate = services.review_undo_last(user=request.user)
    except services.ReviewError as error:
        return _respond(request, filters, status=400, error=" ".join(error.messages))
    if not request.headers.get("HX-Request"):
        return _respond(request, filters, info=f"Took back your review of item #{candidate.pk}.")
    info = f"Took back your review of item #{candidate.pk}: label it again."
    return _respond(request, filters, candidate=candidate, info=info)


@role_required(POLICY_OWNER)
@require_GET
def adjudication_list(request):
    page = Paginator(selectors.adjudication_queue(), 25).get_page(request.GET.get("page"))
    for candidate in page:
        candidate.soft_label = selectors.soft_label(candidate=candidate)
    return render(
        request, "labeling/adjudication.html", {"page": page, "recent": selectors.adjudication_recent(limit=20)}
    )


@role_required(POLICY_OWNER)
@require_POST
def adjudicate(request, pk):
    label, reason = request.POST.get("label", ""), request.POST.get("reason", "")
    error = ""
    try:
        services.review_adjudicate(user=request.user, candidate_id=pk, label=label, reason=reason)
    except services.ReviewError as exc:
        error = " ".join(exc.messages)
    if not request.headers.get("HX-Request"):
        if error:
            messages.error(request, f"Item #{pk}: {error}")
        else:
            messages.success(request, f"Item #{pk}: {label} is final.")
        return redirect("adjudication_list")
    try:
        candidate = selectors.adjudication_item(pk=pk)
    except Candidate.DoesNotExist:
        raise Http404(f"No item #{pk}.") from None
    candidate.soft_label = selectors.soft_label(candidate=candidate)
    context = {"c": candidate, "error": error, "chosen": label, "reason": reason}
    return render(request, "labeling/_adjudication_item.html", context, status=400 if error else 200)
