"""Agreement pages: per run and per policy version (policy owners and ML engineers)."""

from django.shortcuts import render

from policyhub import selectors as policy_selectors
from policyhub.roles import ML_ENGINEER, POLICY_OWNER, role_required

from .. import selectors, services
from .common import run_or_404, target_precision


def _render(request, scope: str, build, **context):
    target, error = target_precision(request)
    report = build(target)
    status = 400 if error else 200
    return render(
        request,
        "labeling/agreement.html",
        {"report": report, "evaluation": report.evaluation, "truth_name": "human", "scope": scope,
         "error": error, **context},
        status=status,
    )  # fmt: skip


@role_required(POLICY_OWNER, ML_ENGINEER)
def run_agreement(request, pk):
    run = run_or_404(pk, request.user)
    snapshot = services.agreement_snapshot(run=run)
    version = run.policy_version
    return _render(
        request, f"Run #{run.pk}",
        lambda t: selectors.snapshot_report(snapshot, version=version, target_precision=t), run=run,
    )  # fmt: skip


@role_required(POLICY_OWNER, ML_ENGINEER)
def version_agreement(request, slug, number):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    version = policy_selectors.version_get(user=request.user, policy=policy, number=number)
    return _render(
        request,
        f"{policy.name} v{version.number}, all runs",
        lambda t: selectors.snapshot_report(
            services.agreement_snapshot(version=version), version=version, target_precision=t
        ),
    )
