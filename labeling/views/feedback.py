"""Browser views for policy feedback: the review page's flag (htmx, swapping only the flag box, so the label and
note being written stay as they are), the policy owners' flag on the pages they work on (a run's items, the
adjudication page, the gold set, a draft preview's flips: ``_flag_item.html``), and each policy's feedback inbox
with its resolve, dismiss and reopen actions.

Annotators flag items and see their own flags; policy owners flag, see all and act; ML engineers read the inbox."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from policyhub import roles
from policyhub import selectors as policy_selectors
from policyhub.roles import ANNOTATOR, ML_ENGINEER, POLICY_OWNER, role_required

from ..models import PolicyFeedback
from ..selectors import feedback as feedback_selectors
from ..services import feedback as feedback_services

INBOX_ROLES = (POLICY_OWNER, ML_ENGINEER, ANNOTATOR)


def flag_box(*, user, candidate, values: dict | None = None, error: str = "", sent=None, opened: bool = False):
    """The review page's flag box: the form (the run's version's rules, the teacher's cited ones marked) and the
    flags the user sees on this item."""
    version = candidate.run.policy_version
    agreeing = candidate.run.samples.filter(pair_id=candidate.pair_id, error_kind="", label=candidate.label)
    cited = {rule for rules in agreeing.values_list("cited_rules", flat=True) for rule in rules or ()}
    return {
        "c": candidate,
        "rules": [{"id": r["id"], "text": r.get("text", ""), "cited": r["id"] in cited} for r in version.rules],
        "kinds": PolicyFeedback.Kind.choices,
        "flags": feedback_selectors.feedback_on_item(user=user, candidate=candidate),
        "values": values or {"kind": PolicyFeedback.Kind.UNCLEAR_RULE, "rule_ids": "", "note": ""},
        "error": error,
        "sent": sent,
        "open": opened or bool(error),
    }


def _submit_flag(request, pk):
    """Flag item ``pk`` from the POSTed form: (the item, what was typed, the error or "", the flag sent or None).
    404 for an item the caller may not flag."""
    values = {key: request.POST.get(key, "") for key in ("kind", "rule_ids", "note")}
    try:
        candidate = feedback_services.feedback_candidate(user=request.user, candidate_id=pk)
    except feedback_services.FeedbackNotFound as missing:
        raise Http404(str(missing)) from None
    error, sent = "", None
    try:
        sent, _ = feedback_services.feedback_create(
            user=request.user, candidate_id=pk, kind=values["kind"], rule_ids=values["rule_ids"], note=values["note"],
            idempotency_key=request.POST.get("idempotency_key", ""),
        )  # fmt: skip
    except feedback_services.FeedbackError as exc:
        error = " ".join(exc.messages)
    return candidate, values, error, sent


@role_required(ANNOTATOR, POLICY_OWNER)
@require_POST
def review_flag(request, pk):
    """Flag the review item ``pk`` as a policy problem. htmx: the flag box again (with the error and what was typed,
    400, or the confirmation); otherwise back to the queue with a message."""
    candidate, values, error, sent = _submit_flag(request, pk)
    if not request.headers.get("HX-Request"):
        if error:
            messages.error(request, f"Item #{pk}: {error}")
        else:
            messages.info(request, f"Flag #{sent.pk} sent on item #{pk}: the policy owners see it in their inbox.")
        return redirect("review_queue")
    context = flag_box(user=request.user, candidate=candidate, values=values if error else None, error=error, sent=sent)
    return render(request, "labeling/_feedback_box.html", context, status=400 if error else 200)


def item_flag_context(*, candidate_id: int, version, next_url: str = "", **state) -> dict:
    """What ``_flag_item.html`` shows for one item: the kinds, the rule IDs of the item's version, and ``state``
    (``values`` typed, ``error``, the ``sent`` flag, ``open``)."""
    return {
        "candidate_id": candidate_id,
        "rule_ids": version.rule_ids,
        "version_number": version.number,
        "kinds": PolicyFeedback.Kind.choices,
        "next": next_url,
        "values": state.get("values") or {"kind": PolicyFeedback.Kind.UNCLEAR_RULE, "rule_ids": "", "note": ""},
        "error": state.get("error", ""),
        "sent": state.get("sent"),
        "open": bool(state.get("error")),
    }


@role_required(POLICY_OWNER)
@require_POST
def item_flag(request, pk):
    """A policy owner flags item ``pk`` (a labeling run's or a gold score's) from the page they are on. htmx: the
    item's flag form again (the error and what was typed, 400; or the confirmation); otherwise back to ``next``
    (a path of this site) with a message."""
    candidate, values, error, sent = _submit_flag(request, pk)
    version = candidate.run.policy_version
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=False):
        next_url = reverse("feedback_inbox", args=[version.policy.slug])
    if not request.headers.get("HX-Request"):
        if error:
            messages.error(request, f"Item #{pk}: {error}")
        else:
            messages.success(request, f"Flag #{sent.pk} sent on item #{pk}: it is open in the feedback inbox.")
        return redirect(next_url)
    context = item_flag_context(
        candidate_id=pk, version=version, next_url=next_url, values=values if error else None, error=error, sent=sent
    )
    return render(request, "labeling/_flag_item.html", context, status=400 if error else 200)


def _filters(data) -> dict:
    """The inbox's filters from the query: open flags unless asked otherwise (``status=`` shows every status)."""
    resolved_in = data.get("resolved_in", "")
    status = data.get("status", "open")
    if resolved_in.isdigit():
        status = PolicyFeedback.Status.RESOLVED
    return {
        "status": status if status in ("", *feedback_selectors.STATUSES) else "open",
        "resolved_in": int(resolved_in) if resolved_in.isdigit() else None,
        "rule": data.get("rule", "").strip().upper(),
        "kind": data.get("kind", "") if data.get("kind", "") in PolicyFeedback.Kind.values else "",
    }


def _inbox_url(slug: str, filters: dict) -> str:
    query = {key: value for key, value in filters.items() if value not in (None, "")}
    if filters.get("status") == "":
        query["status"] = ""
    return reverse("feedback_inbox", args=[slug]) + (f"?{urlencode(query)}" if query else "")


@role_required(*INBOX_ROLES)
@require_GET
def feedback_inbox(request, slug):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    filters = _filters(request.GET)
    page = Paginator(feedback_selectors.feedback_list(user=request.user, policy=policy, **filters), 25).get_page(
        request.GET.get("page")
    )
    versions = list(policy_selectors.version_list(user=request.user, policy=policy))
    rule_ids = sorted({r["id"] for v in versions for r in v.rules}, key=lambda rid: int(rid[1:]))
    context = {
        "policy": policy,
        "page": page,
        "filters": filters,
        "here": _inbox_url(slug, filters),
        "counts": feedback_selectors.feedback_counts(user=request.user, policy=policy),
        "versions": versions,
        "latest_number": max((v.number for v in versions), default=0),
        "rule_ids": rule_ids,
        "kinds": PolicyFeedback.Kind.choices,
        "can_act": roles.has_role(request.user, POLICY_OWNER),
        "sees_all": feedback_selectors.sees_all(request.user),
    }
    return render(request, "labeling/feedback_inbox.html", context)


def _back(request, slug: str) -> str:
    url = request.POST.get("next", "")
    inbox = reverse("feedback_inbox", args=[slug])
    return url if url.startswith(inbox) else inbox


def _owned(request, slug: str, pk: int):
    policy = policy_selectors.policy_get(user=request.user, slug=slug)
    if not PolicyFeedback.objects.filter(pk=pk, policy=policy).exists():
        raise Http404(f"{policy.slug} has no feedback #{pk}.")
    return policy


@role_required(POLICY_OWNER)
@require_POST
def feedback_resolve(request, slug, pk):
    _owned(request, slug, pk)
    number = request.POST.get("version", "")
    try:
        if not number.isdigit():
            raise feedback_services.FeedbackError("Choose the version that resolves it.")
        feedback = feedback_services.feedback_resolve(
            user=request.user, feedback_id=pk, version_number=int(number), note=request.POST.get("note", "")
        )
    except feedback_services.FeedbackError as error:
        messages.error(request, f"Feedback #{pk}: {' '.join(error.messages)}")
    else:
        messages.success(request, f"Feedback #{pk} is resolved in v{feedback.resolved_in_version.number}.")
    return redirect(_back(request, slug))


@role_required(POLICY_OWNER)
@require_POST
def feedback_dismiss(request, slug, pk):
    _owned(request, slug, pk)
    try:
        feedback_services.feedback_dismiss(user=request.user, feedback_id=pk, reason=request.POST.get("reason", ""))
    except feedback_services.FeedbackError as error:
        messages.error(request, f"Feedback #{pk}: {' '.join(error.messages)}")
    else:
        messages.success(request, f"Feedback #{pk} is dismissed; the reason is recorded.")
    return redirect(_back(request, slug))


@role_required(POLICY_OWNER)
@require_POST
def feedback_reopen(request, slug, pk):
    _owned(request, slug, pk)
    try:
        feedback_services.feedback_reopen(user=request.user, feedback_id=pk, reason=request.POST.get("reason", ""))
    except feedback_services.FeedbackError as error:
        messages.error(request, f"Feedback #{pk}: {' '.join(error.messages)}")
    else:
        messages.success(request, f"Feedback #{pk} is open again; what it was and why it was reopened are recorded.")
    return redirect(_back(request, slug))
