"""Reads for the quality gates: a policy's thresholds, the figures a draft is gated on, the gate check of a draft
and a published version's gate record.

The figures come from the draft's latest preview on the gold set whose ``content_hash`` is the draft's (accuracy,
per-rule accuracy against the published version's, the preview run's hallucination rate) and, through
``red_team_figures`` — the one place red-team runs plug in — from the draft's latest red-team run. Evaluating them is
``labeling.gates.evaluate_gates`` (pure).
"""

from dataclasses import dataclass, field

from policyhub.models import Policy, PolicyVersion

from ..evaluation import DEFAULT_TARGET_PRECISION
from ..gates import GateResult, blocking, evaluate_gates, evaluate_red_team_gates, needs_gold, relabel_gate, summary
from ..models import DraftPreview, GateRecord, LabelingRun, QualityGates
from .labelmap import label_mapping_figures
from .previews import draft_preview_state
from .redteam_report import latest_red_team_run, red_team_gate_figures
from .trust_rates import run_trust_rates

ACTIVE = [LabelingRun.Status.QUEUED, LabelingRun.Status.RUNNING]


def policy_gates(*, policy: Policy) -> QualityGates | None:
    """The policy's gates, or None when its owners never set any."""
    return QualityGates.objects.filter(policy=policy).select_related("updated_by").first()


def policy_thresholds(*, policy: Policy) -> dict | None:
    """The thresholds ``evaluate_gates`` reads, None when no gate is on."""
    gates = policy_gates(policy=policy)
    return gates.thresholds() if gates is not None and gates.configured else None


# --- figures -------------------------------------------------------------------------------------------------
def red_team_figures(*, draft: PolicyVersion, config=None) -> tuple[dict | None, str]:
    """The red-team figures of the draft as it is now, and a note saying why there are none: its latest finished
    red-team run of its current content (with the preview's teacher config first, else any config)."""
    run = (config is not None and latest_red_team_run(draft, config=config)) or latest_red_team_run(draft)
    if run is None:
        return None, "no red-team run of this draft"
    return {"run": run.pk, "teacher_config": run.teacher_config.name, **red_team_gate_figures(run)}, ""


def _per_rule(draft_report, published_report) -> dict:
    rules: dict[str, dict] = {}
    for side, report in (("draft", draft_report), ("published", published_report)):
        for row in report.per_rule if report else []:
            entry = rules.setdefault(row.rule, {"draft": None, "published": None, "n_draft": 0, "n_published": 0})
            entry[side], entry[f"n_{side}"] = round(row.accuracy, 6), row.n
    return rules


def gold_figures(*, preview: DraftPreview) -> dict:
    """The preview's figures against gold: accuracy, per-rule accuracy of draft and published, hallucination."""
    state = draft_preview_state(preview=preview, target_precision=DEFAULT_TARGET_PRECISION)
    accuracy = state.draft_evaluation.accuracy
    published = state.published_evaluation
    hallucination = run_trust_rates(run=LabelingRun.objects.get(pk=preview.draft_run_id)).hallucination
    return {
        "accuracy": None if accuracy.accuracy is None else round(accuracy.accuracy, 6),
        "n": accuracy.n,
        "correct": accuracy.correct,
        "published_version": preview.published_version.number if preview.published_version_id else None,
        "published_accuracy": (
            round(published.accuracy.accuracy, 6) if published and published.accuracy.accuracy is not None else None
        ),
        "per_rule": _per_rule(state.draft_evaluation, published),
        "hallucination_rate": None if hallucination.rate is None else round(hallucination.rate, 6),
        "hallucination": hallucination.as_dict(),
        "flips": len(state.flips),
        "teacher_config": preview.teacher_config.name,
    }


def gate_figures(*, draft: PolicyVersion, preview: DraftPreview | None) -> dict:
    """Everything a draft is gated on: the preview's gold figures (None without a preview) and the red-team ones."""
    red, note = red_team_figures(draft=draft, config=preview.teacher_config if preview else None)
    figures = {"preview": preview.pk if preview else None, "gold": gold_figures(preview=preview) if preview else None}
    if red is None and preview is not None and preview.red_team_run_id is not None:
        note = _preview_red_team_note(preview) or note
        figures["red_team_run"] = preview.red_team_run_id  # the pages link it
    figures["red_team"] = red
    if note:
        figures["red_team_note"] = note
    return figures


def _preview_red_team_note(preview: DraftPreview) -> str:
    """Why the preview's own red-team run gives no figures: a part failed or was cancelled (the first such, with
    its error), or it is still running; "" otherwise."""
    parts = LabelingRun.objects.filter(red_team_run=preview.red_team_run_id).order_by("id")
    named = f"the red-team run #{preview.red_team_run_id} of preview #{preview.pk}"
    for status in (LabelingRun.Status.FAILED, LabelingRun.Status.CANCELLED):  # as the run's own status reads
        part = next((p for p in parts if p.status == status), None)
        if part is not None:
            what = f"its {part.red_team_category or 'clean'} part" + (f": {part.error}" if part.error else "")
            verb = "failed" if status == LabelingRun.Status.FAILED else "was cancelled"
            return f"{named} {verb} ({what}); resume it or preview again"
    return f"{named} is still running" if any(part.status in ACTIVE for part in parts) else ""


def gate_figures_for_preview(preview: DraftPreview) -> dict:
    return gate_figures(draft=preview.draft, preview=preview)


# --- the check of a draft ------------------------------------------------------------------------------------
def _preview_problem(draft: PolicyVersion) -> tuple[DraftPreview | None, str]:
    """The latest preview of the draft as it is now, or why there is none usable (ask for a preview)."""
    previews = DraftPreview.objects.filter(draft=draft).select_related("teacher_config", "published_version")
    latest = previews.first()
    preview = previews.filter(content_hash=draft.content_hash).first()
    if preview is None:
        if latest is None:
            return None, (
                f"Draft v{draft.number} has not been previewed on the gold set: preview it (policy editor → "
                "Preview on gold set) so the quality gates can be checked."
            )
        return None, (
            f"The draft changed since its latest preview (#{latest.pk}, revision {latest.draft_revision}; the draft "
            f"is at revision {draft.revision}): preview it again so the gates see the current content."
        )
    runs = LabelingRun.objects.filter(pk__in=[preview.draft_run_id, preview.published_run_id])
    if any(run.is_active for run in runs):
        return preview, f"Preview #{preview.pk} is still running: wait for it to finish, then publish."
    failed = [run for run in runs if run.status != LabelingRun.Status.SUCCEEDED]
    if failed:
        return preview, (
            f"Preview #{preview.pk} did not finish ({failed[0].get_status_display().lower()}"
            f"{': ' + failed[0].error if failed[0].error else ''}): preview the draft again."
        )
    return preview, ""


@dataclass
class GateCheck:
    """The quality gates of a draft now: which preview they read, what blocks, and why a preview is needed."""

    draft: PolicyVersion
    thresholds: dict | None
    preview: DraftPreview | None = None
    preview_problem: str = ""  # "" or why publishing needs a (new, finished) preview first
    figures: dict = field(default_factory=dict)
    results: list[GateResult] = field(default_factory=list)

    @property
    def configured(self) -> bool:
        """The policy has gates, or the draft's label mapping brings its relabel gate."""
        return self.thresholds is not None or "label_mapping" in self.figures

    @property
    def blocking(self) -> list[GateResult]:
        return blocking(self.results)

    @property
    def needs_preview(self) -> bool:
        return bool(self.preview_problem)

    @property
    def passed(self) -> bool:
        """Publishing may go ahead without an override."""
        return not self.needs_preview and not self.blocking

    @property
    def summary(self) -> str:
        return self.preview_problem or summary(self.results)

    def as_dict(self) -> dict:
        return {
            "draft": self.draft.number,
            "revision": self.draft.revision,
            "content_hash": self.draft.content_hash,
            "configured": self.configured,
            "passed": self.passed,
            "needs_preview": self.needs_preview,
            "preview_problem": self.preview_problem,
            "preview": self.preview.pk if self.preview else None,
            "thresholds": self.thresholds,
            "figures": self.figures,
            "results": [r.as_dict() for r in self.results],
        }


def draft_gate_check(*, draft: PolicyVersion) -> GateCheck:
    """The gate check of ``draft`` as it is now (no gates: an empty, passing check). A draft splitting labels
    also gets the relabel gate, which reads the gold set, not a preview."""
    thresholds = policy_thresholds(policy=draft.policy)
    check = GateCheck(draft=draft, thresholds=thresholds)
    mapping = label_mapping_figures(draft=draft)
    relabel = {"label_mapping": mapping} if mapping is not None else {}
    if thresholds is None:
        check.figures, check.results = relabel, relabel_gate(mapping)
        return check
    preview, problem = _preview_problem(draft)
    if problem and needs_gold(thresholds):
        check.preview, check.preview_problem = preview, problem
        check.figures, check.results = relabel, relabel_gate(mapping)
        return check
    check.preview = None if problem else preview
    check.figures = {**gate_figures(draft=draft, preview=check.preview), **relabel}
    check.results = evaluate_gates(check.figures, thresholds) + relabel_gate(mapping)
    return check


def gates_for_draft(policy: Policy) -> GateCheck | None:
    """The CLI hook (e.g. ``manage.py redteam run … --wait``): the gate check of the policy's draft, None when it
    has no draft. ``check.passed`` False means publishing would be blocked; ``check.summary`` says why."""
    draft = policy.versions.filter(status=PolicyVersion.Status.DRAFT).select_related("policy").first()
    return None if draft is None else draft_gate_check(draft=draft)


def red_team_run_gate_results(*, run) -> list[GateResult]:
    """The policy's red-team gates on one finished red-team run's own figures, whatever version it ran: what
    ``manage.py redteam run --wait`` exits on, so a policy change can go through CI."""
    return evaluate_red_team_gates(red_team_gate_figures(run), policy_thresholds(policy=run.policy_version.policy))


# --- records -------------------------------------------------------------------------------------------------
def version_gate_record(*, version: PolicyVersion) -> GateRecord | None:
    """The version's gate record (None for a draft, or a version published before gates were recorded)."""
    return (
        GateRecord.objects.filter(version=version)
        .select_related("published_by", "overridden_by", "version__policy")
        .first()
    )


def record_results(record: GateRecord) -> list[GateResult]:
    return [GateResult.from_dict(result) for result in record.results]
