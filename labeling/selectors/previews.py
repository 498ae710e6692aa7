"""Reads for draft previews: a draft and the latest published version labelling the gold set side by side, the
figures so far and the pairs whose label flips (scored like every gold figure, see ``gold``), and the summary of
the draft's red-team run started with the preview (``redteam_report``, without examples: the run's own page has
them)."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet

from policyhub.models import PolicyVersion

from ..evaluation import EvaluationReport, evaluation_report
from ..models import Candidate, DraftPreview, GoldLabel, LabelingRun, Pair, RedTeamRun, RedTeamSet, TeacherConfig
from .gold import in_gold_keys, judged, run_answers
from .labelmap import DraftGold, draft_gold
from .planning import RunPlan, run_plan
from .redteam import RedTeamPlan, red_team_plan
from .redteam_report import RedTeamReport, red_team_report
from .runs import run_for_key


@dataclass
class Flip:
    pair: Pair
    published_label: str
    draft_label: str
    draft_rationale: str
    gold_label: str | None
    published_candidate_id: int | None = None  # the published version's item: a policy owner may flag it


@dataclass
class PreviewState:
    preview: DraftPreview
    total: int
    draft_done: int  # pairs the draft run has finished (labeled or failed)
    draft_failed: int
    published_done: int | None  # None: nothing to compare with
    finished: bool
    draft_evaluation: EvaluationReport
    published_evaluation: EvaluationReport | None
    compared: int  # pairs both runs labeled
    flips: list[Flip] = field(default_factory=list)
    stale: str = ""  # why the preview no longer shows the draft as it is, "" when it does
    errors: list[str] = field(default_factory=list)
    red_team: RedTeamReport | None = None  # the draft's red-team run with the preview; None: none started
    gold: DraftGold | None = None  # the gold set through the draft's label mapping (its split items to relabel)


def frozen_draft(preview: DraftPreview, draft_run: LabelingRun) -> PolicyVersion:
    """The draft as the preview labelled it (unsaved): the labels and rules frozen on its run."""
    content = draft_run.version_content
    return PolicyVersion(
        policy=preview.policy, number=preview.draft.number, labels=content["labels"], rules=content["rules"]
    )


def preview_staleness(preview: DraftPreview) -> str:
    """Why the figures no longer describe the draft ("" while they do). Publishing keeps the content, so a preview
    of a draft published since stays valid."""
    draft = PolicyVersion.objects.filter(pk=preview.draft_id).values("content_hash", "revision").first()
    if draft["content_hash"] != preview.content_hash:
        return (
            f"The draft changed since this preview (revision {preview.draft_revision} → {draft['revision']}): "
            "these figures are for the earlier content. Preview again to see the current draft."
        )
    return ""


def _done(run: LabelingRun, pair_ids) -> tuple[int, int]:
    counts = Candidate.objects.filter(run=run, pair_id__in=pair_ids).aggregate(
        done=Count("id", filter=~Q(status=Candidate.Status.PENDING)),
        failed=Count("id", filter=Q(status=Candidate.Status.FAILED)),
    )
    return counts["done"], counts["failed"]


def _red_team(preview: DraftPreview) -> tuple[RedTeamReport | None, list[str]]:
    """The red-team run's report so far (no examples) and its parts' errors."""
    if preview.red_team_run_id is None:
        return None, []
    run = RedTeamRun.objects.select_related("red_team_set", "policy_version__policy", "teacher_config").get(
        pk=preview.red_team_run_id
    )
    report = red_team_report(run=run, examples=0)
    return report, [f"Red team ({p.red_team_category or 'clean'}): {p.error}" for p in report.parts if p.error]


def draft_preview_state(*, preview: DraftPreview, target_precision: float) -> PreviewState:
    """What the preview page shows now: progress, the figures so far and the flips so far, and the red-team
    summary; ``finished`` once the gold runs and the red-team run (if any) are all done."""
    draft_run = LabelingRun.objects.get(pk=preview.draft_run_id)
    published_run = LabelingRun.objects.get(pk=preview.published_run_id) if preview.published_run_id else None
    red_team, red_team_errors = _red_team(preview)
    red_team_active = red_team is not None and any(part.is_active for part in red_team.parts)
    pair_ids = list(Candidate.objects.filter(run=draft_run).values_list("pair_id", flat=True))
    in_preview = set(pair_ids)
    # The draft is scored on gold read through its label mapping, the published version on the same pairs as
    # stored; gold items of a split label without their new label are scored on neither side.
    mapped = draft_gold(draft=preview.draft)
    gold = {pair: label for pair, label in mapped.truth.items() if pair in in_preview}
    published_gold = {pair: mapped.original[pair] for pair in gold}
    draft_answers = run_answers(run=draft_run, pair_ids=pair_ids)
    draft_done, draft_failed = _done(draft_run, pair_ids)
    state = PreviewState(
        preview=preview,
        total=len(pair_ids),
        draft_done=draft_done,
        draft_failed=draft_failed,
        published_done=None,
        finished=not draft_run.is_active and not (published_run and published_run.is_active) and not red_team_active,
        draft_evaluation=evaluation_report(
            judged(draft_answers, gold), version=frozen_draft(preview, draft_run), target_precision=target_precision
        ),
        published_evaluation=None,
        compared=0,
        stale=preview_staleness(preview),
        errors=[f"{name}: {run.error}" for name, run in (("Draft", draft_run), ("Published", published_run))
                if run is not None and run.error] + red_team_errors,
        red_team=red_team,
        gold=mapped,
    )  # fmt: skip
    if published_run is None:
        return state
    published_answers = run_answers(run=published_run, pair_ids=pair_ids)
    state.published_done = _done(published_run, pair_ids)[0]
    # once the draft is published with a mapping, gold holds its keys: the published side reads through it too
    scored, _ = in_gold_keys(published_answers, preview.published_version)
    state.published_evaluation = evaluation_report(
        judged(scored, published_gold),
        version=preview.published_version,
        target_precision=target_precision,
    )
    both = sorted(set(draft_answers) & set(published_answers))
    state.compared = len(both)
    flipped = [p for p in both if draft_answers[p].label != published_answers[p].label]
    pairs = Pair.objects.select_related("member", "job").in_bulk(flipped)
    items = dict(Candidate.objects.filter(run=published_run, pair_id__in=flipped).values_list("pair_id", "pk"))
    state.flips = [
        Flip(
            pair=pairs[p],
            published_label=published_answers[p].label,
            draft_label=draft_answers[p].label,
            draft_rationale=draft_answers[p].rationale,
            gold_label=gold.get(p),
            published_candidate_id=items.get(p),
        )
        for p in flipped
    ]
    return state


def draft_previews(*, draft: PolicyVersion, limit: int = 10) -> QuerySet[DraftPreview]:
    return DraftPreview.objects.filter(draft=draft).select_related("teacher_config", "created_by")[:limit]


def draft_preview_for_key(*, user, key: str) -> DraftPreview | None:
    """The preview ``user`` started with this API ``Idempotency-Key`` (its draft run carries the key)."""
    run = run_for_key(user=user, key=key)
    return DraftPreview.objects.filter(draft_run=run).first() if run else None


# --- what a preview would cost -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreviewPlan:
    """What a preview would send and cost before it starts: the gold set under the draft and under the published
    version (a finished score's answers are cached, so free), and the red-team run of the chosen set (None: no
    set, or skipped). Plans of the run engine's own plan code (``run_plan``, ``red_team_plan``)."""

    draft: RunPlan
    published: RunPlan | None
    red_team: RedTeamPlan | None
    red_team_set: RedTeamSet | None

    @property
    def gold_requests(self) -> int:
        return self.draft.requests + (self.published.requests if self.published else 0)

    @property
    def gold_input_tokens(self) -> int:
        return self.draft.estimated_input_tokens + (self.published.estimated_input_tokens if self.published else 0)

    @property
    def gold_output_tokens(self) -> int:
        return self.draft.estimated_output_tokens + (self.published.estimated_output_tokens if self.published else 0)

    @property
    def gold_cost(self) -> Decimal:
        return self.draft.estimated_cost + (self.published.estimated_cost if self.published else Decimal(0))

    @property
    def total_cost(self) -> Decimal:
        return self.gold_cost + (self.red_team.estimated_cost if self.red_team else Decimal(0))


def draft_preview_plan(
    *, user, draft: PolicyVersion, config: TeacherConfig, red_team_set: RedTeamSet | None, skip_red_team: bool
) -> PreviewPlan:
    """The plan of the preview ``services.draft_preview_start`` would start with these choices (the newest
    red-team set unless one is chosen or the red team is skipped)."""
    policy = draft.policy
    selection = {"pair_ids": list(GoldLabel.objects.filter(policy=policy).values_list("pair_id", flat=True))}
    published = policy.versions.filter(status=PolicyVersion.Status.PUBLISHED).order_by("-number").first()
    if not skip_red_team and red_team_set is None:
        red_team_set = policy.red_team_sets.order_by("-created_at", "-id").first()
    red_team_set = None if skip_red_team else red_team_set
    return PreviewPlan(
        draft=run_plan(version=draft, config=config, selection=selection),
        published=run_plan(version=published, config=config, selection=selection) if published else None,
        red_team=red_team_set and red_team_plan(user=user, red_team_set=red_team_set, version=draft, config=config),
        red_team_set=red_team_set,
    )
