"""Browser views for the quality gates: a policy's thresholds (the form sits on the policy page; policy owners
only). The gate check is shown on the publish page and the gate record on the version and diff pages
(``policyhub.views``)."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from policyhub import selectors as policy_selectors
from policyhub.roles import POLICY_OWNER, role_required

from .. import services
from ..forms import QualityGatesForm
from ..selectors.gates import policy_gates


@role_required(POLICY_OWNER)
@require_http_methods(["GET", "POST"])
def policy_gates_edit(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    gates = policy_gates(policy=policy)
    form = QualityGatesForm(request.POST or None, instance=gates)
    if request.method == "POST" and form.is_valid():
        values = {name: form.cleaned_data[name] for name in form.Meta.fields}
        saved = services.quality_gates_update(policy=policy, user=request.user, **values)
        messages.success(
            request,
            "Saved the quality gates: drafts are checked against them before publishing."
            if saved.configured
            else "Every quality gate is off: drafts publish without a gate check.",
        )
        return redirect("policy_detail", slug=slug)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "labeling/gates_edit.html", {"policy": policy, "gates": gates, "gates_form": form}, status=status
    )
