"""The trends page: a policy's figures version by version (policy owners and ML engineers, who read the agreement
and gold pages the figures come from)."""

from django.shortcuts import render

from policyhub import selectors as policy_selectors
from policyhub.roles import ML_ENGINEER, POLICY_OWNER, role_required

from .. import selectors, services
from ..models import LabelingRun
from ..selectors import trends


def _kept_agreement(version):
    return selectors.snapshot_report(services.agreement_snapshot(version=version), version=version)


def _kept_trust(run_ids):
    return services.runs_trust(LabelingRun.objects.filter(pk__in=run_ids))


def _kept_labelled(run_ids):
    return {pk: page.labelled for pk, page in services.run_pages(LabelingRun.objects.filter(pk__in=run_ids)).items()}


@role_required(POLICY_OWNER, ML_ENGINEER)
def policy_trends(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    rows = trends.policy_trends(
        policy=policy, agreement_of=_kept_agreement, trust_of=_kept_trust, labelled_of=_kept_labelled
    )
    context = {"policy": policy, "trends": rows, "charts": trends.trend_charts(rows) if rows else []}
    return render(request, "labeling/trends.html", context)
