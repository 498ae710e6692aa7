"""Browser views of the policy app: parse, check the role, call a service or selector, render."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from labeling import services as labeling_services
from labeling.forms import QualityGatesForm
from labeling.selectors.feedback import feedback_counts, rule_feedback
from labeling.selectors.gates import draft_gate_check, policy_gates, record_results, version_gate_record
from labeling.selectors.labelmap import draft_gold
from labeling.selectors.trust_rates import version_trust_rates
from labeling.services.gates import GateError

from . import selectors, services
from .diffing import version_diff
from .forms import DraftEditor, PolicyCreateForm
from .markdown import render_markdown
from .models import ContentValidationError, PolicyVersion
from .prompts import build_system_prompt, frozen_prompt
from .roles import POLICY_OWNER, READERS, role_required


def _validation_messages(error: ValidationError) -> list[str]:
    return [str(m) for m in (error.messages if hasattr(error, "messages") else [error])]


@role_required(*READERS)
def policy_list(request):
    return render(request, "policyhub/policy_list.html", {"policies": selectors.policy_list(user=request.user)})


@role_required(POLICY_OWNER)
@require_http_methods(["GET", "POST"])
def policy_create(request):
    form = PolicyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        policy = services.policy_create(owner=request.user, **form.cleaned_data)
        messages.success(request, f"Created {policy.name} with an empty draft v1.")
        return redirect("draft_edit", slug=policy.slug)
    return render(request, "policyhub/policy_create.html", {"form": form})


@role_required(*READERS)
def policy_detail(request, slug):
    """The policy's version history, with a form to compare any two versions."""
    policy = selectors.policy_get(user=request.user, slug=slug)
    versions = list(selectors.version_list(user=request.user, policy=policy))
    gates = policy_gates(policy=policy)
    return render(
        request,
        "policyhub/policy_detail.html",
        {
            "policy": policy,
            "versions": versions,
            "draft": next((v for v in versions if v.is_draft), None),
            "latest": next((v for v in versions if v.status == PolicyVersion.Status.PUBLISHED), None),
            "gates": gates,
            "gate_rows": QualityGatesForm.rows(gates) if gates else [],
            "gates_form": QualityGatesForm(instance=gates),
        },
    )


def _record_context(version: PolicyVersion) -> dict:
    record = None if version.is_draft else version_gate_record(version=version)
    return {"version": version, "record": record, "record_results": record_results(record) if record else []}


@role_required(*READERS)
def version_detail(request, slug, number):
    policy = selectors.policy_get(user=request.user, slug=slug)
    version = selectors.version_get(user=request.user, policy=policy, number=number)
    return render(
        request,
        "policyhub/version_detail.html",
        {
            "policy": policy,
            "version": version,
            "body_html": render_markdown(version.body),
            "trust": version_trust_rates(version=version, rates_of=labeling_services.runs_trust),
            "gate": _record_context(version),
        },
    )


@role_required(*READERS)
def version_prompt(request, slug, number):
    """The exact system prompt the teacher receives for this version (frozen at publish when available)."""
    policy = selectors.policy_get(user=request.user, slug=slug)
    version = selectors.version_get(user=request.user, policy=policy, number=number)
    snapshot = frozen_prompt(version)
    prompt = snapshot.system_prompt if snapshot else build_system_prompt(version)
    return render(
        request,
        "policyhub/version_prompt.html",
        {"policy": policy, "version": version, "prompt": prompt, "snapshot": snapshot},
    )


@role_required(*READERS)
def version_compare(request, slug):
    policy = selectors.policy_get(user=request.user, slug=slug)
    try:
        old_number, new_number = int(request.GET["from"]), int(request.GET["to"])
    except (KeyError, ValueError):
        return HttpResponseBadRequest("Choose two versions to compare: ?from=<number>&to=<number>.")
    old = selectors.version_get(user=request.user, policy=policy, number=old_number)
    new = selectors.version_get(user=request.user, policy=policy, number=new_number)
    return render(
        request,
        "policyhub/version_diff.html",
        {
            "policy": policy,
            "diff": version_diff(old, new),
            "versions": selectors.version_list(user=request.user, policy=policy),
            "gates": [_record_context(old), _record_context(new)],
        },
    )


@role_required(POLICY_OWNER)
@require_POST
def draft_start(request, slug):
    policy = selectors.policy_get(user=request.user, slug=slug)
    draft = services.policy_version_draft_start(policy=policy, user=request.user)
    messages.success(request, f"Draft v{draft.number} is open.")
    return redirect("draft_edit", slug=slug)


def _editor_context(policy, draft, editor, conflict=None, *, user=None) -> dict:
    # next to each rule: its open feedback and how often annotators overrode the teacher on items citing it
    overrides = labeling_services.rule_overrides(policy=policy)  # kept figures: fixed reads whatever the data
    feedback = rule_feedback(policy=policy, overrides=overrides)
    shown = set()
    for form in editor.rules:
        rule = (form["id"].value() or "").strip()
        form.feedback = feedback.get(rule) if rule else None
        shown.add(rule)
    return {
        "policy": policy,
        "draft": draft,
        "editor": editor,
        "conflict": conflict,
        "body_html": render_markdown(editor.draft["body"].value() or ""),
        "feedback_counts": feedback_counts(user=user, policy=policy),
        "overrides": overrides,
        "feedback_elsewhere": [row for rule, row in sorted(feedback.items()) if row.open_flags and rule not in shown],
    }


@role_required(POLICY_OWNER)
@require_http_methods(["GET", "POST"])
def draft_edit(request, slug):
    policy = selectors.policy_get(user=request.user, slug=slug)
    draft = selectors.policy_draft(policy=policy)
    if draft is None:
        messages.info(request, "There is no draft: start one from the latest published version.")
        return redirect("policy_detail", slug=slug)
    if request.method == "GET":
        context = _editor_context(policy, draft, DraftEditor(version=draft), user=request.user)
        return render(request, "policyhub/draft_edit.html", context)

    editor = DraftEditor(request.POST)
    status = 400
    conflict = None
    if editor.is_valid():
        content = editor.content()
        try:
            draft = services.policy_version_draft_save(version=draft, user=request.user, **content)
        except ContentValidationError as error:
            editor.add_content_errors(error.content_errors)
        except services.DraftConflict as error:
            # Keep the user's edit in the form and show what the other person saved; the form now carries the
            # current revision, so saving again deliberately replaces the other edit.
            conflict = error.current
            data = request.POST.copy()
            data["revision"] = str(conflict.revision)
            editor = DraftEditor(data)
            editor.is_valid()
            status = 409
        except ValidationError as error:
            for message in _validation_messages(error):
                messages.error(request, message)
            return redirect("policy_detail", slug=slug)
        else:
            if "publish" in request.POST:
                return _publish(request, policy, draft, draft.revision)
            messages.success(request, f"Saved draft v{draft.number} (revision {draft.revision}).")
            return redirect("draft_edit", slug=slug)
    context = _editor_context(policy, draft, editor, conflict, user=request.user)
    if conflict:
        context["conflict_diff"] = version_diff(conflict, _unsaved(draft, editor))
    return render(request, "policyhub/draft_edit.html", context, status=status)


def _unsaved(draft: PolicyVersion, editor: DraftEditor) -> PolicyVersion:
    """An unsaved copy of the draft holding the editor's content, to diff against the saved one."""
    content = editor.content()
    return PolicyVersion(
        policy=draft.policy,
        number=draft.number,
        body=content["body"],
        labels=services.normalize_labels(content["labels"]),
        rules=services.normalize_rules(content["rules"]),
        label_mapping=content["label_mapping"],
        based_on=draft.based_on,
    )


def _publish(request, policy, draft, revision, override_reason=None, *, on_publish_page=False):
    """Publish and go to the version; refused by the quality gates: the publish page says why (shown again with
    the reason typed so far when the request came from it)."""
    try:
        version = services.policy_version_publish(
            version=draft, user=request.user, revision=revision, override_reason=override_reason
        )
    except services.DraftConflict:
        messages.error(request, "Someone saved the draft since you opened it: review their changes first.")
        return redirect("draft_edit", slug=policy.slug)
    except GateError as error:
        if not on_publish_page:
            messages.error(request, error.messages[0])
            return redirect("draft_publish", slug=policy.slug)
        context = {"policy": policy, "draft": draft, "check": error.check, "error": error.messages[0],
                   "relabel": draft_gold(draft=draft, with_pairs=True)}  # fmt: skip
        return render(request, "policyhub/draft_publish.html", {**context, "reason": override_reason or ""}, status=400)
    except ValidationError as error:
        for message in _validation_messages(error):
            messages.error(request, f"Cannot publish: {message}")
        return redirect("draft_edit", slug=policy.slug)
    messages.success(request, f"Published v{version.number}. It can no longer change.")
    return redirect("version_detail", slug=policy.slug, number=version.number)


@role_required(POLICY_OWNER)
@require_http_methods(["GET", "POST"])
def draft_publish(request, slug):
    """GET: the draft's quality-gate check and the publish form (with an override reason when a gate fails);
    POST: publish."""
    policy = selectors.policy_get(user=request.user, slug=slug)
    draft = selectors.policy_draft(policy=policy)
    if draft is None:
        messages.error(request, "There is no draft to publish.")
        return redirect("policy_detail", slug=slug)
    if request.method == "GET":
        context = {"policy": policy, "draft": draft, "check": draft_gate_check(draft=draft),
                   "relabel": draft_gold(draft=draft, with_pairs=True)}  # fmt: skip
        return render(request, "policyhub/draft_publish.html", context)
    try:
        revision = int(request.POST["revision"])
    except (KeyError, ValueError):
        return HttpResponseBadRequest("The publish form must carry the draft revision it was made from.")
    override_reason = request.POST.get("override_reason", "") if "override" in request.POST else None
    return _publish(request, policy, draft, revision, override_reason, on_publish_page=True)


@role_required(POLICY_OWNER)
@require_POST
def markdown_preview(request, slug):
    """htmx: the sanitised HTML of the body being edited."""
    selectors.policy_get(user=request.user, slug=slug)
    return render(request, "policyhub/_markdown.html", {"html": render_markdown(request.POST.get("body", ""))})


@role_required(POLICY_OWNER)
@require_POST
def version_retire(request, slug, number):
    policy = selectors.policy_get(user=request.user, slug=slug)
    version = get_object_or_404(PolicyVersion, policy=policy, number=number)
    try:
        services.policy_version_retire(version=version, user=request.user)
    except ValidationError as error:
        for message in _validation_messages(error):
            messages.error(request, message)
    else:
        messages.success(request, f"Retired v{number}: still readable, no longer offered for new runs.")
    return redirect("policy_detail", slug=slug)
