"""The trends page: a policy's figures version by version (policy owners and ML engineers, who read the agreement
and gold pages the figures come from)."""

from django.shortcuts import render

from policyhub import selectors as policy_selectors
from policyhub.roles import ML_ENGINEER, POLICY_OWNER, role_required

from ..selectors import trends


@role_required(POLICY_OWNER, ML_ENGINEER)
def policy_trends(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    rows = trends.policy_trends(policy=policy)
    context = {"policy": policy, "trends": rows, "charts": trends.trend_charts(rows) if rows else []}
    return render(request, "labeling/trends.html", context)
