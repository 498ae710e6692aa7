"""Browser views for label-set changes: the gold items of labels the draft splits, each relabelled under the
draft's labels by a policy owner (drafts are theirs only)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from policyhub import selectors as policy_selectors
from policyhub.labelmap import mapping_rows
from policyhub.roles import POLICY_OWNER, role_required

from .. import selectors, services


def _draft_or_404(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    draft = policy_selectors.policy_draft(policy=policy)
    if draft is None:
        raise Http404(f"{policy.slug} has no draft: nothing to relabel.")
    return policy, draft


@role_required(POLICY_OWNER)
@require_http_methods(["GET", "POST"])
def draft_relabel(request, slug):
    """GET: the draft's label mapping and the gold items of split labels; POST (``pair``, ``label``): relabel one."""
    policy, draft = _draft_or_404(request, slug)
    error, status = "", 200
    if request.method == "POST":
        pair = request.POST.get("pair", "")
        try:
            pair_id = int(pair) if pair.isdigit() and len(pair) < 19 else 0
            relabel = services.gold_relabel_set(
                user=request.user, draft=draft, pair_id=pair_id, label=request.POST.get("label", "")
            )
        except services.GoldError as exc:
            error, status = " ".join(exc.messages), 400
        else:
            pair = f"{relabel.pair.member.external_id} × {relabel.pair.job.external_id}"
            messages.success(request, f"Pair {pair}: {relabel.old_label} → {relabel.label} under v{draft.number}.")
            return redirect("draft_relabel", slug=slug)
    gold = selectors.draft_gold(draft=draft, with_pairs=True)
    rows = mapping_rows(draft.label_mapping, old_keys=draft.based_on.label_keys) if draft.based_on_id else []
    context = {"policy": policy, "draft": draft, "gold": gold, "mapping": rows, "error": error}
    return render(request, "labeling/draft_relabel.html", context, status=status)
