"""Browser views for the gold set and scores on it: parse, check the role, call a service or selector, render.

Policy owners change the gold set and start scores; ML engineers may read the gold set and the scores."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from policyhub import roles
from policyhub import selectors as policy_selectors
from policyhub.roles import ML_ENGINEER, POLICY_OWNER, role_required

from .. import selectors, services
from ..models import LabelingRun, TeacherConfig
from .common import run_or_404, target_precision

READ_SCORES = (POLICY_OWNER, ML_ENGINEER)
SCORED = selectors.gold.SCORED_PURPOSES


def _next_url(request, fallback: str) -> str:
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=False):
        return url
    return fallback


GOLD_PER_PAGE = ITEMS_PER_PAGE = 100


@role_required(*READ_SCORES)
def gold_set(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    context = {
        "policy": policy,
        "gold": Paginator(selectors.gold_list(policy=policy), GOLD_PER_PAGE).get_page(request.GET.get("page")),
        "counts": selectors.gold_counts(policy=policy),
        "events": selectors.gold_events(policy=policy),
        "runs": selectors.runs_with_human_approvals(policy=policy),
        "can_edit": roles.has_role(request.user, POLICY_OWNER),
    }
    return render(request, "labeling/gold_set.html", context)


@role_required(POLICY_OWNER)
@require_POST
def gold_remove(request, slug, pk):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    get_object_or_404(policy.gold_labels, pk=pk)
    try:
        event = services.gold_remove(user=request.user, gold_id=pk, reason=request.POST.get("reason", ""))
    except services.GoldError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Removed gold label {event.label} of pair {event.pair.member.external_id} × "
                                  f"{event.pair.job.external_id}; the removal is in the log below.")  # fmt: skip
    return redirect("gold_set", slug=slug)


@role_required(POLICY_OWNER)
@require_POST
def gold_mark(request, pk):
    """Mark one human-approved item as gold. A conflict with an existing gold label shows both labels and asks for
    an explicit replacement (``replace=1``)."""
    fallback = reverse("adjudication_list")
    replace = request.POST.get("replace") == "1"
    try:
        result = services.gold_mark(user=request.user, candidate_id=pk, replace=replace)
    except services.GoldConflict as conflict:
        context = {"conflict": conflict, "next": _next_url(request, fallback)}
        return render(request, "labeling/gold_conflict.html", context, status=409)
    except services.GoldError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(_next_url(request, fallback))
    pair = result.gold.pair
    text = {
        "added": f"Pair {pair.member.external_id} × {pair.job.external_id} is now gold as {result.gold.label}.",
        "unchanged": f"Pair {pair.member.external_id} × {pair.job.external_id} was already gold as "
        f"{result.gold.label}: nothing changed.",
        "replaced": f"Replaced the gold label of pair {pair.member.external_id} × {pair.job.external_id}: now "
        f"{result.gold.label}.",
    }[result.outcome]
    messages.success(request, text)
    return redirect(_next_url(request, fallback))


def _labeling_run_or_404(request, pk) -> LabelingRun:
    """Only labeling runs have human-approved items to mark as gold."""
    return run_or_404(pk, request.user, purposes=[LabelingRun.Purpose.LABELING], missing=f"No labeling run #{pk}.")


@role_required(POLICY_OWNER)
def gold_run_items(request, pk):
    """A run's human-approved items, each with its gold status, to mark one by one or all at once."""
    run = _labeling_run_or_404(request, pk)
    counts = selectors.run_human_approved_counts(run=run)
    context = {
        "run": run,
        "policy": run.policy_version.policy,
        "items": Paginator(selectors.run_human_approved(run=run), ITEMS_PER_PAGE).get_page(request.GET.get("page")),
        "total": counts["total"],
        "gold_same": counts["same"],
        "gold_other": counts["other"],
        "waiting": selectors.run_waiting_count(run=run),
    }
    return render(request, "labeling/gold_run_items.html", context)


@role_required(POLICY_OWNER)
@require_POST
def gold_mark_run(request, pk):
    run = _labeling_run_or_404(request, pk)
    try:
        result = services.gold_mark_run(user=request.user, run=run)
    except services.GoldError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("gold_run_items", pk=pk)
    messages.success(request, f"Run #{run.pk}: {result.summary}")
    for candidate, gold in result.conflicts:
        messages.warning(
            request,
            f"Item #{candidate.pk} ({candidate.pair.member.external_id} × {candidate.pair.job.external_id}): approved "
            f"as {candidate.approved_label}, gold is {gold.label}. Replace it from the item's row if the new label is "
            "right.",
        )
    return redirect("gold_run_items", pk=pk)


@role_required(*READ_SCORES)
@require_http_methods(["GET", "POST"])
def gold_score(request, slug):
    """Score a published version × teacher config on the gold set (owners), and every run's score so far."""
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    versions = selectors.released_versions(policy=policy)
    error = ""
    if request.method == "POST":
        if not roles.has_role(request.user, POLICY_OWNER):
            raise PermissionDenied("Starting a score needs the role policy_owner.")
        version = versions.filter(pk=request.POST.get("version") or 0).first()
        config = TeacherConfig.objects.filter(pk=request.POST.get("config") or 0).first()
        if version is None or config is None:
            error = "Choose a published version of this policy and a teacher config."
        else:
            try:
                run = services.gold_score_start(user=request.user, version=version, config=config)
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                messages.success(request, f"Scoring v{version.number} × {config.name} on {run.pairs_total} gold pairs.")
                return redirect("gold_score_run", slug=slug, pk=run.pk)
    context = {
        "policy": policy,
        "versions": versions,
        "configs": selectors.teacher_config_list(),
        "gold_total": policy.gold_labels.count(),
        "scores": selectors.runs_on_gold(policy=policy),
        "error": error,
        "can_edit": roles.has_role(request.user, POLICY_OWNER),
    }
    return render(request, "labeling/gold_score.html", context, status=400 if error else 200)


@role_required(*READ_SCORES)
def gold_score_run(request, slug, pk):
    """One run's labels against the gold set (a score run, or any labeling run of the policy); polls while active."""
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    run = run_or_404(
        pk, request.user, policy=policy, purposes=SCORED, missing=f"{policy.slug} has no run #{pk} to score."
    )
    target, precision_error = target_precision(request)
    context = {
        "policy": policy,
        "score": selectors.run_gold_score(run=run, target_precision=target),
        "precision_error": precision_error,
        "truth_name": "gold",
    }
    if request.headers.get("HX-Request"):
        return render(request, "labeling/_gold_score_progress.html", context)
    return render(request, "labeling/gold_score_run.html", context)
