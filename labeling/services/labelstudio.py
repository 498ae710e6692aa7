"""The Label Studio round trip of a run, through the official SDK (``label-studio-sdk``).

**Push** creates (or reuses) one Label Studio project per run: its label config is generated from the policy
version's labels, its instructions are the policy text, and each needs-review item still waiting for reviews becomes
a task whose data carries the member, the job and the candidate id, with the teacher's label as a prediction.
Which items are already there is read from the project itself, so a push that died halfway is completed by the
next one and nothing is imported twice.

**Pull** reads the project's annotations back as reviews through :func:`labeling.services.reviews.review_record`,
the same state transition as an in-app submission. The annotator is the PolicyHub user who linked that Label Studio
account (:func:`labelstudio_account_link`, proven with the account's own token; never by email, which Label Studio
does not verify) and must hold the annotator role. Each annotation that was applied, or refused for a lasting
reason, is kept by its Label Studio id, so pulling again adds nothing; annotations by Label Studio users nobody
linked are reported (their id and email) and applied by a later pull once the person links their account. Edits
made in Label Studio after an annotation was pulled are not read again.
"""

from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import TYPE_CHECKING
from xml.etree import ElementTree

import httpx
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from label_studio_sdk.core.api_error import ApiError

from policyhub import roles
from policyhub.markdown import render_markdown

from ..models import (
    Candidate,
    LabelingRun,
    LabelStudioAccount,
    LabelStudioAnnotation,
    LabelStudioProject,
    Review,
    ReviewState,
)
from .reviews import ReviewError, review_record

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

IMPORT_CHUNK = 500  # tasks per import request
PAGE_SIZE = 500  # tasks per listing page

#: names of the control tags in the generated label config
LABEL_CONTROL, NOTE_CONTROL = "label", "note"


class LabelStudioError(Exception):
    """A push or pull that could not be done; the message says why. PolicyHub's data is unchanged."""


class LabelStudioNotConfigured(LabelStudioError):
    pass


class LabelStudioUnavailable(LabelStudioError):
    """Label Studio could not be reached or refused the request."""


def _client(token: str = ""):
    """The SDK client, as PolicyHub's Label Studio user (``LABEL_STUDIO_API_KEY``) or as whoever ``token`` belongs
    to. Imported here: the client pulls in pandas and more (~135 MB) that every web and worker process would
    otherwise carry without ever talking to Label Studio."""
    from label_studio_sdk import LabelStudio

    url, key = settings.LABEL_STUDIO_URL, token or settings.LABEL_STUDIO_API_KEY
    if not url or not settings.LABEL_STUDIO_API_KEY:
        raise LabelStudioNotConfigured(
            "Label Studio is not configured: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY in the environment."
        )
    try:
        return LabelStudio(base_url=url.rstrip("/"), api_key=key, timeout=settings.LABEL_STUDIO_TIMEOUT)
    except ApiError as error:  # the SDK checks a JWT key's expiry up front
        whose = "your token" if token else "the API key"
        raise LabelStudioUnavailable(f"Label Studio refused {whose}: {error.body}") from error


class _calling:
    """Turns the SDK's and httpx's errors into a :class:`LabelStudioUnavailable` that says what failed."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if isinstance(error, ApiError):
            detail = error.body
            if isinstance(detail, dict):  # e.g. {"detail": "Validation error", "validation_errors": {...}}
                detail = " ".join(str(detail[k]) for k in ("detail", "validation_errors") if detail.get(k)) or detail
            raise LabelStudioUnavailable(
                f"Label Studio answered {error.status_code} to {self.what}: {detail}"
            ) from error
        if isinstance(error, httpx.HTTPError):
            raise LabelStudioUnavailable(
                f"Could not reach Label Studio at {settings.LABEL_STUDIO_URL} to {self.what}: {error}"
            ) from error
        return False


# --- what the project shows ----------------------------------------------------------------------------------
def label_config(version) -> str:
    """The labeling interface: member and job side by side, one choice per label of the version (shown by title,
    stored by key through ``alias``, its definition as the hint) and an optional note. ElementTree escapes every
    attribute, so any title is safe."""
    view = ElementTree.Element("View")
    for name, header in (("member", "Member"), ("job", "Job")):
        ElementTree.SubElement(view, "Header", value=header)
        ElementTree.SubElement(view, "Text", name=name, value=f"${name}")
    choices = ElementTree.SubElement(
        view, "Choices", name=LABEL_CONTROL, toName="member", choice="single-radio", required="true"
    )
    shown: set[str] = set()
    for label in version.labels:
        title = label.get("title") or label["key"]
        if title in shown:  # Label Studio needs distinct values
            title = f"{title} ({label['key']})"
        shown.add(title)
        ElementTree.SubElement(choices, "Choice", value=title, alias=label["key"], hint=label.get("definition", ""))
    ElementTree.SubElement(
        view, "TextArea", name=NOTE_CONTROL, toName="member", placeholder="Note (optional)", maxSubmissions="1",
        editable="true", rows="2",
    )  # fmt: skip
    return ElementTree.tostring(view, encoding="unicode")


def instructions(version) -> str:
    """The policy text, its labels and rules as sanitised HTML (Label Studio shows instructions as HTML)."""
    parts = [version.body or "", "## Labels"]
    parts += [f"- **{label.get('title') or label['key']}** (`{label['key']}`): {label.get('definition', '')}"
              for label in version.labels]  # fmt: skip
    if version.rules:
        parts.append("## Rules")
        parts += [f"- **{rule['id']}**: {rule['text']}" for rule in version.rules]
    return str(render_markdown("\n\n".join(parts)))


def model_version(run: LabelingRun) -> str:
    version = run.policy_version
    return f"{run.teacher_config.name} + {version.policy.slug} v{version.number}"


def _profile(*lines: tuple[str, object]) -> str:
    text = []
    for name, value in lines:
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        if value:
            text.append(f"{name}: {value}" if name else str(value))
    return "\n".join(text)


def _task(candidate: Candidate, version_name: str) -> dict:
    member, job = candidate.pair.member, candidate.pair.job
    data = {
        "candidate_id": candidate.pk,
        "run_id": candidate.run_id,
        "member_id": member.external_id,
        "member_headline": member.headline,
        "member_skills": member.skills,
        "member_seniority": member.seniority,
        "member_location": member.location,
        "member_summary": member.summary,
        "job_id": job.external_id,
        "job_title": job.title,
        "job_description": job.description,
        "job_required_skills": job.required_skills,
        "job_seniority": job.seniority,
        "job_location": job.location,
        "member": _profile(("", member.headline), ("Skills", member.skills), ("Seniority", member.seniority),
                           ("Location", member.location), ("", member.summary)),
        "job": _profile(("", job.title), ("Required skills", job.required_skills), ("Seniority", job.seniority),
                        ("Location", job.location), ("", job.description)),
    }  # fmt: skip
    task: dict = {"data": data}
    if candidate.label:
        task["predictions"] = [{
            "model_version": version_name,
            "score": candidate.confidence,
            "result": [{"from_name": LABEL_CONTROL, "to_name": "member", "type": "choices",
                        "value": {"choices": [candidate.label]}}],
        }]  # fmt: skip
    return task


# --- linking accounts ----------------------------------------------------------------------------------------
def labelstudio_account_link(*, user, token: str) -> LabelStudioAccount:
    """Link ``user`` to the Label Studio account whose own access token ``token`` is: Label Studio's current-user
    endpoint (``/api/current-user/whoami``) says whose it is. The token is used for that one request, never kept.
    A user links one account; a Label Studio account belongs to one PolicyHub user."""
    if not roles.user_roles(user):
        raise PermissionDenied("Only users with a role can link a Label Studio account.")
    token = token.strip()
    if not token:
        raise LabelStudioError(
            "Paste your Label Studio access token (Label Studio → Account & Settings → Access Token)."
        )
    linked = LabelStudioAccount.objects.filter(user=user).first()
    if linked is not None:
        raise LabelStudioError(
            f"You are already linked to Label Studio user #{linked.labelstudio_user_id} ({linked.email}); unlink first."
        )
    try:
        with _calling("check your token"):
            me = _client(token).users.whoami()
    except LabelStudioUnavailable as error:
        if getattr(error.__cause__, "status_code", None) in (401, 403):
            raise LabelStudioError(
                "Label Studio does not accept that token: copy the whole access token from your Account & Settings "
                "page in Label Studio."
            ) from None
        raise
    try:
        with transaction.atomic():
            return LabelStudioAccount.objects.create(user=user, labelstudio_user_id=me.id, email=me.email or "")
    except IntegrityError:
        raise LabelStudioError(
            f"Label Studio user #{me.id} ({me.email}) is already linked to another PolicyHub user."
        ) from None


def labelstudio_account_unlink(*, user) -> None:
    """Forget the user's Label Studio account: their later annotations are not applied until they link again."""
    LabelStudioAccount.objects.filter(user=user).delete()


# --- push ----------------------------------------------------------------------------------------------------
@dataclass
class PushResult:
    project_id: int
    url: str
    created: bool
    added: int
    already_there: int

    @property
    def message(self) -> str:
        verb = "Created" if self.created else "Updated"
        return (
            f"{verb} Label Studio project #{self.project_id}: {self.added} new task{'s' if self.added != 1 else ''}"
            f", {self.already_there} already there."
        )


def _ensure_project(client: "LabelStudio", run: LabelingRun) -> tuple[LabelStudioProject, bool]:
    with transaction.atomic():
        LabelingRun.objects.select_for_update().filter(pk=run.pk).first()  # one first push at a time
        link = LabelStudioProject.objects.filter(run=run).first()
        if link is not None:
            try:
                with _calling("find the run's project"):
                    client.projects.get(id=link.project_id)
            except LabelStudioUnavailable as error:
                if getattr(error.__cause__, "status_code", None) == 404:
                    raise LabelStudioError(
                        f"Label Studio project #{link.project_id} of run #{run.pk} no longer exists in Label Studio."
                    ) from error
                raise
            return link, False
        if not _waiting(run).exists():
            raise LabelStudioError(f"Run #{run.pk} has no items waiting for review: there is nothing to push.")
        version = run.policy_version
        with _calling("create the project"):
            project = client.projects.create(
                title=f"PolicyHub run #{run.pk}: {version.policy.name} v{version.number}"[:50],
                description=f"Needs-review items of PolicyHub run #{run.pk} ({model_version(run)}).",
                label_config=label_config(version),
                expert_instruction=instructions(version),
                show_instruction=True,
                maximum_annotations=run.reviewers_per_item,
                model_version=model_version(run),
            )
        url = f"{settings.LABEL_STUDIO_URL.rstrip('/')}/projects/{project.id}/data"
        return LabelStudioProject.objects.create(run=run, project_id=project.id, url=url), True


def _waiting(run: LabelingRun):
    return run.candidates.filter(routing=Candidate.Routing.NEEDS_REVIEW, review_state=ReviewState.PENDING)


def _pushed_candidate_ids(client: "LabelStudio", project_id: int) -> set[int]:
    with _calling("list the project's tasks"):
        tasks = client.tasks.list(project=project_id, fields="task_only", page_size=PAGE_SIZE)
        return {task.data["candidate_id"] for task in tasks if isinstance(task.data.get("candidate_id"), int)}


def labelstudio_push(*, run: LabelingRun) -> PushResult:
    """Create or reuse the run's project and add the needs-review items waiting for reviews that it lacks."""
    client = _client()
    link, created = _ensure_project(client, run)
    with transaction.atomic():
        link = LabelStudioProject.objects.select_for_update().get(pk=link.pk)  # one push or pull at a time
        there = _pushed_candidate_ids(client, link.project_id)
        todo = (
            _waiting(run)
            .exclude(pk__in=there)
            .select_related("pair__member", "pair__job")
            .order_by("pk")
            .iterator(chunk_size=IMPORT_CHUNK)
        )
        name, added = model_version(run), 0
        while chunk := list(islice(todo, IMPORT_CHUNK)):
            with _calling("import tasks"):
                client.projects.import_tasks(id=link.project_id, request=[_task(c, name) for c in chunk])
            added += len(chunk)
        link.tasks_total = len(there) + added
        link.last_push_at, link.last_push_added = timezone.now(), added
        link.save()
    return PushResult(link.project_id, link.url, created, added, len(there))


# --- pull ----------------------------------------------------------------------------------------------------
@dataclass
class PullReport:
    applied: list[dict] = field(default_factory=list)
    already_imported: int = 0
    unknown_annotators: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    pulled_at: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def message(self) -> str:
        text = (
            f"Pulled from Label Studio: {len(self.applied)} applied, {self.already_imported} already imported, "
            f"{len(self.skipped)} skipped"
        )
        if self.unknown_annotators:
            count = sum(entry["annotations"] for entry in self.unknown_annotators)
            who = ", ".join(
                f"#{entry['labelstudio_user_id']} {entry['email']}".strip() for entry in self.unknown_annotators
            )
            text += f"; {count} by Label Studio users not linked to PolicyHub (not applied): {who}"
        return text + "."


_REFUSAL = {
    "not_pending": "the item no longer needs a review (already done or in adjudication)",
    "already_reviewed": "this annotator already reviewed the item",
    "bad_label": "the label is not one of this policy version",
}


def _read_result(result: list[dict]) -> tuple[str, str]:
    label, note = "", ""
    for region in result or []:
        value = region.get("value") or {}
        if region.get("from_name") == LABEL_CONTROL and value.get("choices"):
            label = value["choices"][0]
        elif region.get("from_name") == NOTE_CONTROL and value.get("text"):
            note = "\n".join(value["text"])
    return label, note


def _annotators(client: "LabelStudio", project_id: int) -> dict[int, str]:
    with _calling("list the project's annotators"):
        return {user.id: user.email for user in client.projects.list_unique_annotators(id=project_id)}


class _Pull:
    """One pull's bookkeeping: the report, and who is who (by linked Label Studio user id, never by email)."""

    def __init__(self, link: LabelStudioProject, annotators: dict[int, str]):
        self.link, self.annotators, self.report = link, annotators, PullReport()
        self.unknown: dict[int | None, int] = {}
        self.users = {
            account.labelstudio_user_id: account.user
            for account in LabelStudioAccount.objects.filter(
                labelstudio_user_id__in=list(annotators), user__is_active=True
            ).select_related("user")
        }

    def skip(self, entry: dict, reason: str, *, keep: bool = False) -> None:
        self.report.skipped.append({**entry, "reason": reason})
        if keep:  # a lasting reason: remember the annotation so the next pull does not report it again
            LabelStudioAnnotation.objects.create(
                project=self.link, annotation_id=entry["annotation_id"], task_id=entry["task_id"],
                candidate_id=entry["candidate_id"], email=entry["email"], outcome=LabelStudioAnnotation.Outcome.REFUSED,
                reason=reason,
            )  # fmt: skip

    def annotation(self, task_id: int, candidate_id, annotation: dict) -> None:
        email = self.annotators.get(annotation.get("completed_by"), "")
        entry = {"annotation_id": annotation["id"], "task_id": task_id, "candidate_id": candidate_id, "email": email}
        if annotation.get("was_cancelled"):
            return self.skip(entry, "skipped in Label Studio (no label given)")
        label, note = _read_result(annotation.get("result"))
        if not label:
            return self.skip(entry, "no label chosen")
        author = annotation.get("completed_by")
        user = self.users.get(author)
        if user is None:  # applied by a later pull, once this Label Studio user has linked their account
            self.unknown[author] = self.unknown.get(author, 0) + 1
            return None
        if not roles.has_role(user, roles.ANNOTATOR):
            return self.skip(entry, f"{user.get_username()} does not hold the annotator role in PolicyHub")
        try:
            with transaction.atomic():
                candidate = review_record(user=user, candidate_id=candidate_id, label=label, note=note)
                review = Review.objects.get(candidate=candidate, reviewer=user, kind=Review.Kind.REVIEW)
                LabelStudioAnnotation.objects.create(
                    project=self.link, annotation_id=annotation["id"], task_id=task_id, candidate=candidate,
                    email=email, review=review, outcome=LabelStudioAnnotation.Outcome.APPLIED,
                )  # fmt: skip
        except ReviewError as error:
            return self.skip(entry, _REFUSAL.get(error.code, " ".join(error.messages)), keep=True)
        self.report.applied.append({**entry, "label": label, "review_state": candidate.review_state})
        return None


def labelstudio_pull(*, run: LabelingRun) -> PullReport:
    """Apply the project's new annotations as reviews; report what was applied, already imported or skipped."""
    client = _client()
    link = LabelStudioProject.objects.filter(run=run).first()
    if link is None:
        raise LabelStudioError(f"Run #{run.pk} has not been pushed to Label Studio yet: push it first.")
    with _calling("list the project's annotations"):
        tasks = list(client.tasks.list(project=link.project_id, fields="all", page_size=PAGE_SIZE))
    annotators = _annotators(client, link.project_id)
    with transaction.atomic():
        link = LabelStudioProject.objects.select_for_update().get(pk=link.pk)  # one push or pull at a time
        pull = _Pull(link, annotators)
        seen = set(link.annotations.values_list("annotation_id", flat=True))
        ours = set(run.candidates.filter(routing=Candidate.Routing.NEEDS_REVIEW).values_list("pk", flat=True))
        for task in tasks:
            candidate_id = (task.data or {}).get("candidate_id")
            for annotation in task.annotations or []:
                if not isinstance(annotation, dict):  # the SDK hands them over as dicts; be sure
                    annotation = annotation.model_dump()
                if annotation["id"] in seen:
                    pull.report.already_imported += 1
                elif candidate_id not in ours:
                    entry = {"annotation_id": annotation["id"], "task_id": task.id, "candidate_id": candidate_id,
                             "email": annotators.get(annotation.get("completed_by"), "")}  # fmt: skip
                    pull.skip(entry, f"the task is not a needs-review item of run #{run.pk}")
                else:
                    pull.annotation(task.id, candidate_id, annotation)
        pull.report.unknown_annotators = [
            {"labelstudio_user_id": who, "email": annotators.get(who, ""), "annotations": n}
            for who, n in sorted(pull.unknown.items(), key=lambda item: item[0] or 0)
        ]
        pull.report.pulled_at = timezone.now().isoformat()
        link.last_pull_at, link.last_pull_report = timezone.now(), pull.report.as_dict()
        link.save()
    return pull.report
