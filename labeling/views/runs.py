"""Browser views for labeling runs: start (with a dry-run plan), list, follow, cancel, resume, push to and pull from
Label Studio (ML engineers; policy owners see a run and push and pull its Label Studio project)."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from policyhub.roles import ML_ENGINEER, POLICY_OWNER, has_role, role_required

from .. import selectors, services
from ..forms import RunForm
from ..models import Candidate, LabelingRun
from ..selectors import trust_rates
from ..selectors.planning import run_plan
from ..services import feedback as feedback_services
from .common import run_or_404


@role_required(ML_ENGINEER)
@require_http_methods(["GET", "POST"])
def run_new(request):
    form = RunForm(request.POST or None)
    plan = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if "start" in request.POST:
                run = services.labeling_run_create(
                    version=data["version"], config=data["config"], selection=form.selection(),
                    thresholds=form.thresholds(), checks=form.checks(), chunk_size=data["chunk_size"],
                    user=request.user, idempotency_key=request.POST.get("idempotency_key", ""), mode=data["mode"],
                    reviewers_per_item=data["reviewers_per_item"], judge=data["judge"],
                )  # fmt: skip
                messages.success(request, f"Run #{run.pk} started on {run.pairs_total} pairs.")
                return redirect("run_detail", pk=run.pk)
            services.labeling_run_check_judge(judge=data["judge"], mode=data["mode"])
            plan = run_plan(version=data["version"], config=data["config"], selection=form.selection(),
                            mode=data["mode"], judge=data["judge"])  # fmt: skip
        except ValidationError as error:
            form.add_error(None, error)
    return render(request, "labeling/run_new.html", {"form": form, "plan": plan}, status=400 if form.errors else 200)


@role_required(ML_ENGINEER)
def run_list(request):
    return render(request, "labeling/run_list.html", {"runs": selectors.run_list()})


@role_required(ML_ENGINEER, POLICY_OWNER)
def run_detail(request, pk):
    """Policy owners see it too: they push and pull the run's Label Studio project."""
    run = run_or_404(pk, request.user)
    figures = services.run_page(run=run)
    if request.headers.get("HX-Request") and request.GET.get("part") == "timeline":  # its own, slower poll
        return render(request, "labeling/_run_timeline.html", _timeline_context(run, figures))
    context = {
        "run": run,
        "summary": figures.summary,
        "figures": figures,
        "costs": selectors.run_costs(run=run, labelled=figures.labelled),
        "stuck_chunks": selectors.run_stuck_chunks(run=run),
        "watchdog_seconds": round(settings.WATCHDOG_INTERVAL_SECONDS),
        "figures_refresh_seconds": settings.RUN_FIGURES_REFRESH_SECONDS,
        "reasons": Candidate.REASONS,
        "labelstudio": selectors.run_labelstudio(run=run),
        "labelstudio_configured": bool(settings.LABEL_STUDIO_URL and settings.LABEL_STUDIO_API_KEY),
    }
    if request.headers.get("HX-Request"):
        return render(request, "labeling/_run_progress.html", context)
    context |= _candidates_context(request, run) | _trust_context(request, run, figures)
    context |= _timeline_context(run, figures)
    return render(request, "labeling/run_detail.html", context)


@role_required(ML_ENGINEER, POLICY_OWNER)
def run_candidates(request, pk):
    """The candidate table alone, polled by the run page while the run is active: 204 (htmx keeps what it shows)
    while no answer was written since the last poll, else the table, without the poll once the run has ended."""
    run = run_or_404(pk, request.user)
    if run.is_active and request.GET.get("seen") == selectors.run_progress_mark(run=run):
        return HttpResponse(status=204)
    return render(request, "labeling/_run_candidates.html", {"run": run, **_candidates_context(request, run)})


def _cursor(request, name: str) -> int | None:
    """A page cursor (a candidate id) from the query string; anything else reads as none (the first page)."""
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _candidates_context(request, run: LabelingRun) -> dict:
    routing = request.GET.get("routing", "needs_review")
    reason = request.GET.get("reason", "")
    page = selectors.run_candidates_page(
        run=run, routing=routing, reason=reason, after=_cursor(request, "after"), before=_cursor(request, "before")
    )
    flaggable = (  # a policy owner flags the items of a labeling run or a gold score (views/feedback.item_flag)
        has_role(request.user, POLICY_OWNER)
        and run.purpose in feedback_services.OWNER_PURPOSES
        and not run.policy_version.is_draft
    )
    return {
        "page": page, "routing": routing, "reason": reason, "seen": selectors.run_progress_mark(run=run),
        "flaggable": flaggable,
    }  # fmt: skip


FLAGGED_PER_PAGE = 20


def _timeline_context(run: LabelingRun, figures: selectors.RunPage) -> dict:
    charts = selectors.run_timeline_charts(figures.timeline, pairs_total=run.pairs_total)
    return {"run": run, "timeline_charts": charts}


def _trust_context(request, run: LabelingRun, figures: selectors.RunPage) -> dict:
    flagged = Paginator(trust_rates.run_flagged(run=run), FLAGGED_PER_PAGE).get_page(request.GET.get("flagged_page"))
    flagged.object_list = trust_rates.attach_rationales(flagged.object_list)
    return {"trust": figures.trust, "flagged": flagged}


@role_required(ML_ENGINEER)
@require_POST
def run_cancel(request, pk):
    return _run_action(request, pk, services.labeling_run_cancel, "Run #{pk} cancelled: finished work is kept.")


@role_required(ML_ENGINEER)
@require_POST
def run_resume(request, pk):
    return _run_action(request, pk, services.labeling_run_resume, "Run #{pk} resumed.")


def _run_action(request, pk, action, success):
    run = run_or_404(pk, request.user)
    try:
        action(run=run, user=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, success.format(pk=pk))
    return redirect("run_detail", pk=pk)


@role_required(ML_ENGINEER, POLICY_OWNER)
@require_POST
def run_labelstudio_push(request, pk):
    """Synchronous: a push is a few batched requests, and the person who asked sees the outcome at once."""
    run = run_or_404(pk, request.user)
    try:
        result = services.labelstudio_push(run=run)
    except services.LabelStudioError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, result.message)
    return redirect("run_detail", pk=pk)


@role_required(ML_ENGINEER, POLICY_OWNER)
@require_POST
def run_labelstudio_pull(request, pk):
    """Synchronous, like the push: the pull report is shown on the run page (kept as the last pull's report)."""
    run = run_or_404(pk, request.user)
    try:
        report = services.labelstudio_pull(run=run)
    except services.LabelStudioError as error:
        messages.error(request, str(error))
    else:
        (messages.warning if report.unknown_annotators or report.skipped else messages.success)(request, report.message)
    return redirect("run_detail", pk=pk)
