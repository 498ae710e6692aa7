"""Browser views for red-team sets and runs: a policy's sets and runs, a new set (generated, or uploaded custom
variants), a run's plan then its start, cancelling and resuming a whole run (policy owners), a run's report
(polled while it runs) and two runs side by side (policy owners and ML engineers; runs on a draft are the policy
owners' only, like drafts)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from policyhub import selectors as policy_selectors
from policyhub.models import PolicyVersion
from policyhub.roles import ML_ENGINEER, POLICY_OWNER, has_role, role_required

from ..models import LabelingRun, RedTeamCategory, RedTeamRun, RedTeamSet, TeacherConfig
from ..selectors import teacher_config_list
from ..selectors.redteam import red_team_plan, red_team_sets
from ..selectors.redteam_report import red_team_compare, red_team_report, red_team_run_get, red_team_runs
from ..services.redteam import (
    GENERATORS,
    RESUMABLE,
    UNFINISHED,
    RedTeamUploadError,
    red_team_custom_set_create,
    red_team_run_cancel,
    red_team_run_resume,
    red_team_run_start,
    red_team_set_create,
)
from ..services.runs import labeling_run_check_judge


def _list_context(request, policy, **extra) -> dict:
    versions = policy_selectors.version_list(user=request.user, policy=policy).exclude(
        status=PolicyVersion.Status.RETIRED
    )
    return {
        "policy": policy,
        "sets": red_team_sets(user=request.user, policy=policy),
        "runs": red_team_runs(user=request.user, policy=policy),
        "versions": versions,
        "configs": teacher_config_list(),
        "categories": [(value, title) for value, title in RedTeamCategory.choices if value in GENERATORS],
        "is_owner": has_role(request.user, POLICY_OWNER),
        **extra,
    }


@role_required(POLICY_OWNER, ML_ENGINEER)
@require_GET
def redteam_list(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    return render(request, "labeling/redteam_list.html", _list_context(request, policy))


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@role_required(POLICY_OWNER)
@require_POST
def redteam_set_create(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    seed, size = _int(request.POST.get("seed"), -1), _int(request.POST.get("size"), 0)
    try:
        created = red_team_set_create(
            user=request.user, policy=policy, name=request.POST.get("name", ""), seed=seed, sample_size=size,
            categories=request.POST.getlist("categories"), import_batch_id=_int(request.POST.get("import_batch")),
        )  # fmt: skip
    except ValidationError as exc:
        context = _list_context(request, policy, set_error=" ".join(exc.messages), posted=request.POST)
        return render(request, "labeling/redteam_list.html", context, status=400)
    messages.success(request, f"Red-team set #{created.pk}: {created.variants.count()} variants.")
    return redirect("redteam_list", slug=slug)


@role_required(POLICY_OWNER)
@require_POST
def redteam_custom_set_create(request, slug):
    """A set of uploaded custom variants (JSONL); every bad line is listed with its line and field, nothing is
    created."""
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    upload = request.FILES.get("file")
    error, upload_errors, status = "", [], 400
    if upload is None:
        error = "Choose a JSONL file of custom variants to upload."
    else:
        try:
            created = red_team_custom_set_create(
                user=request.user, policy=policy, name=request.POST.get("name", ""), stream=upload,
                source=upload.name or "upload.jsonl",
            )  # fmt: skip
        except RedTeamUploadError as exc:
            error, upload_errors = exc.message, [e.as_dict() for e in exc.errors]
            status = 413 if exc.too_large else 400
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Red-team set #{created.pk}: {created.variants.count()} custom variants.")
            return redirect("redteam_list", slug=slug)
    context = _list_context(request, policy, custom_error=error, custom_errors=upload_errors)
    return render(request, "labeling/redteam_list.html", context, status=status)


def _targets(request, policy, data):
    """(set, version, config, judge or None) named by the form, or an error message."""
    red_team_set = RedTeamSet.objects.filter(pk=_int(data.get("set"), 0), policy=policy).first()
    version = policy_selectors.version_list(user=request.user, policy=policy).filter(
        pk=_int(data.get("version"), 0)
    ).first()  # fmt: skip
    config = TeacherConfig.objects.filter(pk=_int(data.get("config"), 0)).first()
    judge = TeacherConfig.objects.filter(pk=_int(data.get("judge"), 0)).first() if data.get("judge") else None
    if red_team_set is None:
        return None, f"Choose a red-team set of {policy.slug}."
    if version is None:
        return None, "Choose a published version or the draft."
    if config is None:
        return None, "Choose a teacher config."
    if data.get("judge") and judge is None:
        return None, "Choose a judge among the teacher configs, or none."
    return (red_team_set, version, config, judge), ""


@role_required(POLICY_OWNER)
@require_GET
def redteam_plan(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    targets, error = _targets(request, policy, request.GET)
    if targets is None:
        return render(request, "labeling/redteam_list.html", _list_context(request, policy, run_error=error),
                      status=400)  # fmt: skip
    red_team_set, version, config, judge = targets
    try:
        labeling_run_check_judge(judge=judge, mode=LabelingRun.Mode.ONLINE)
    except ValidationError as exc:
        context = _list_context(request, policy, run_error=" ".join(exc.messages))
        return render(request, "labeling/redteam_list.html", context, status=400)
    plan = red_team_plan(user=request.user, red_team_set=red_team_set, version=version, config=config, judge=judge)
    context = {"policy": policy, "set": red_team_set, "version": version, "config": config, "judge": judge,
               "plan": plan}  # fmt: skip
    return render(request, "labeling/redteam_plan.html", context)


@role_required(POLICY_OWNER)
@require_POST
def redteam_run_start(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    targets, error = _targets(request, policy, request.POST)
    if targets is not None:
        red_team_set, version, config, judge = targets
        try:
            run = red_team_run_start(
                user=request.user, red_team_set=red_team_set, version=version, config=config, judge=judge
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Red-team run #{run.pk} started.")
            return redirect("redteam_run", pk=run.pk)
    return render(request, "labeling/redteam_list.html", _list_context(request, policy, run_error=error), status=400)


def _run_or_404(request, pk) -> RedTeamRun:
    try:
        return red_team_run_get(user=request.user, pk=pk)
    except RedTeamRun.DoesNotExist:
        raise Http404(f"No red-team run #{pk}.") from None


@role_required(POLICY_OWNER, ML_ENGINEER)
@require_GET
def redteam_run(request, pk):
    run = _run_or_404(request, pk)
    report = red_team_report(run=run)
    others = [r for r in red_team_runs(user=request.user, policy=run.red_team_set.policy) if r.pk != run.pk]
    states = {part.status for part in report.parts}
    context = {
        "run": run, "report": report, "policy": run.policy_version.policy, "others": others,
        "is_owner": has_role(request.user, POLICY_OWNER),
        "can_cancel": bool(states & set(UNFINISHED)), "can_resume": bool(states & set(RESUMABLE)),
    }  # fmt: skip
    if request.headers.get("HX-Request"):
        return render(request, "labeling/_redteam_report.html", context)
    return render(request, "labeling/redteam_run.html", context)


@role_required(POLICY_OWNER)
@require_POST
def redteam_run_cancel(request, pk):
    return _run_action(request, pk, red_team_run_cancel, "Red-team run #{pk} cancelled: finished answers are kept.")


@role_required(POLICY_OWNER)
@require_POST
def redteam_run_resume(request, pk):
    return _run_action(request, pk, red_team_run_resume, "Red-team run #{pk} resumed.")


def _run_action(request, pk, action, success):
    run = _run_or_404(request, pk)
    try:
        action(user=request.user, run=run)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, success.format(pk=pk))
    return redirect("redteam_run", pk=pk)


@role_required(POLICY_OWNER, ML_ENGINEER)
@require_GET
def redteam_compare(request, pk):
    before = _run_or_404(request, pk)
    other = _int(request.GET.get("with"))
    if other is None:
        raise Http404("Choose the red-team run to compare with (?with=<id>).")
    after = _run_or_404(request, other)
    comparison = red_team_compare(before=before, after=after)
    return render(
        request, "labeling/redteam_compare.html", {"comparison": comparison, "policy": before.red_team_set.policy}
    )
