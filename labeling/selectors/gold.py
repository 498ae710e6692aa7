"""Reads for the gold set and scores on it. Every accuracy, confusion, per-rule and calibration figure comes from
``labeling.evaluation.evaluation_report`` over ``Judged`` records built here (truth = the gold label)."""

from dataclasses import dataclass

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from policyhub.labelmap import translate
from policyhub.models import Policy, PolicyVersion
from policyhub.selectors import forward_translation

from ..evaluation import EvaluationReport, evaluation_report
from ..metrics import Judged
from ..models import Candidate, GoldLabel, GoldLabelEvent, LabelingRun, TeacherSample, human_approved_q

#: The runs a gold score is shown for: labeling and score runs, not a draft preview's (those have their own page).
SCORED_PURPOSES = (LabelingRun.Purpose.LABELING, LabelingRun.Purpose.GOLD_SCORE)


# --- the gold set ----------------------------------------------------------------------------------------------
def gold_labels(*, policy: Policy) -> dict[int, str]:
    """{pair id: gold label} of the policy."""
    return dict(GoldLabel.objects.filter(policy=policy).values_list("pair_id", "label"))


def gold_list(*, policy: Policy) -> QuerySet[GoldLabel]:
    return (
        GoldLabel.objects.filter(policy=policy)
        .select_related("pair__member", "pair__job", "created_by", "source_candidate__run__policy_version")
        .order_by("pair__member__external_id", "pair__job__external_id")
    )


def gold_counts(*, policy: Policy) -> list[tuple[str, int]]:
    """Gold labels per label, in the order of the latest version's labels, then any other label."""
    rows = GoldLabel.objects.filter(policy=policy).values("label").annotate(n=Count("id")).order_by()
    counts = {row["label"]: row["n"] for row in rows}
    latest = policy.versions.order_by("-number").first()
    order = [key for key in (latest.label_keys if latest else []) if key in counts]
    order += sorted(set(counts) - set(order))
    return [(label, counts[label]) for label in order]


def gold_events(*, policy: Policy, limit: int = 50) -> QuerySet[GoldLabelEvent]:
    return GoldLabelEvent.objects.filter(policy=policy).select_related("pair__member", "pair__job", "user")[:limit]


def _gold_label_of_pair(policy_id) -> Subquery:
    return Subquery(GoldLabel.objects.filter(policy_id=policy_id, pair_id=OuterRef("pair_id")).values("label")[:1])


def _count(queryset) -> Subquery:
    return Subquery(queryset.order_by().values("run_id").annotate(n=Count("id")).values("n")[:1])


def runs_with_human_approvals(*, policy: Policy) -> QuerySet[LabelingRun]:
    """Labeling runs of the policy with items humans approved (``approved``) and how many of those are gold. Each
    count reads the run's human-approved items only (the partial index ``candidate_human_approved``), not all of
    its candidates."""
    human = Candidate.objects.filter(run_id=OuterRef("pk")).human_approved()
    gold_pairs = GoldLabel.objects.filter(policy=policy).values("pair_id")
    return (
        LabelingRun.objects.filter(policy_version__policy=policy, purpose=LabelingRun.Purpose.LABELING)
        .annotate(approved=Coalesce(_count(human), 0), gold=Coalesce(_count(human.filter(pair_id__in=gold_pairs)), 0))
        .filter(approved__gt=0)
        .select_related("policy_version", "teacher_config")
        .order_by("-created_at")
    )


def run_human_approved(*, run: LabelingRun) -> QuerySet[Candidate]:
    """The run's human-approved items, each with ``gold_label`` (the pair's gold label under the policy or None)."""
    return (
        run.candidates.human_approved()
        .annotate(gold_label=_gold_label_of_pair(run.policy_version.policy_id))
        .select_related("pair__member", "pair__job")
        .order_by("id")
    )


def run_human_approved_counts(*, run: LabelingRun) -> dict[str, int]:
    """How many of the run's human-approved items there are (``total``), are gold with the same label (``same``)
    and gold with another (``other``): the total from the partial index, the rest from the gold side (a candidate
    per gold pair at most: the run's pairs are unique), whatever the number of items."""
    approved = F("pair__candidates__approved_label")
    gold = GoldLabel.objects.filter(
        human_approved_q("pair__candidates__"), policy_id=run.policy_version.policy_id, pair__candidates__run=run
    ).aggregate(same=Count("id", filter=Q(label=approved)), other=Count("id", filter=~Q(label=approved)))
    return {"total": run.candidates.human_approved().count(), **gold}


def run_waiting_count(*, run: LabelingRun) -> int:
    return run.candidates.waiting_for_humans().count()


# --- scores on the gold set ------------------------------------------------------------------------------------
@dataclass
class Answer:
    """A run's aggregated answer for one pair, with the rules and a rationale of the samples that voted for it."""

    pair_id: int
    label: str
    confidence: float | None
    cited_rules: tuple[str, ...]
    rationale: str


def run_answers(*, run: LabelingRun, pair_ids) -> dict[int, Answer]:
    """Labeled candidates of ``run`` on ``pair_ids``."""
    candidates = {
        c.pair_id: c
        for c in Candidate.objects.filter(run=run, pair_id__in=pair_ids, status=Candidate.Status.LABELED).only(
            "pair_id", "label", "confidence"
        )
    }
    rules: dict[int, set[str]] = {}
    rationale: dict[int, str] = {}
    samples = TeacherSample.objects.filter(run=run, pair_id__in=list(candidates), error_kind="").order_by(
        "pair_id", "sample_index"
    )
    for sample in samples.only("pair_id", "label", "cited_rules", "rationale"):
        if sample.label != candidates[sample.pair_id].label:
            continue
        rules.setdefault(sample.pair_id, set()).update(sample.cited_rules)
        rationale.setdefault(sample.pair_id, sample.rationale)
    return {
        pair_id: Answer(
            pair_id, c.label, c.confidence, tuple(sorted(rules.get(pair_id, ()))), rationale.get(pair_id, "")
        )
        for pair_id, c in candidates.items()
    }


def judged(answers: dict[int, Answer], gold: dict[int, str]) -> list[Judged]:
    return [
        Judged(predicted=a.label, truth=gold[pair_id], confidence=a.confidence, cited_rules=a.cited_rules)
        for pair_id, a in sorted(answers.items())
        if pair_id in gold
    ]


@dataclass
class RunGoldScore:
    run: LabelingRun
    evaluation: EvaluationReport
    gold_total: int  # pairs in the gold set now
    in_run: int  # gold pairs the run covers
    labeled: int  # of those, labeled so far
    failed: int


def gold_reading(version: PolicyVersion) -> tuple[dict[str, list[str]], PolicyVersion]:
    """How labels given under ``version`` read in the gold set's keys: the translation for ``labelmap.translate``
    (``{}`` when no later mapping changed its labels) and the version to report them under (its rules, the newest
    labels)."""
    translation = forward_translation(version=version)
    if not translation:
        return {}, version
    latest = version.policy.versions.exclude(status=PolicyVersion.Status.DRAFT).order_by("-number").first()
    return translation, PolicyVersion(policy=version.policy, number=version.number, labels=latest.labels,
                                      rules=version.rules)  # fmt: skip


def in_gold_keys(answers: dict[int, Answer], version: PolicyVersion) -> tuple[dict[int, Answer], PolicyVersion]:
    """An older version's answers read in the gold set's labels (renamed and merged labels follow the later
    versions' mappings; an answer whose label was split since is not scored) and the version to report them under
    (``gold_reading``). Unchanged for a version whose labels no later mapping changed."""
    translation, report_version = gold_reading(version)
    if not translation:
        return answers, version
    mapped = {}
    for pair_id, answer in answers.items():
        if (label := translate(answer.label, translation)) is not None:
            mapped[pair_id] = Answer(pair_id, label, answer.confidence, answer.cited_rules, answer.rationale)
    return mapped, report_version


def run_gold_score(*, run: LabelingRun, target_precision: float) -> RunGoldScore:
    """A run's teacher labels against the policy's current gold labels (in the gold set's keys, ``in_gold_keys``)."""
    gold = gold_labels(policy=run.policy_version.policy)
    answers, version = in_gold_keys(run_answers(run=run, pair_ids=list(gold)), run.policy_version)
    covered = Candidate.objects.filter(run=run, pair_id__in=list(gold))
    return RunGoldScore(
        run=run,
        evaluation=evaluation_report(judged(answers, gold), version=version, target_precision=target_precision),
        gold_total=len(gold),
        in_run=covered.count(),
        labeled=len(answers),
        failed=covered.filter(status=Candidate.Status.FAILED).count(),
    )


@dataclass
class RunOnGold:
    run: LabelingRun
    n: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None


def runs_on_gold(*, policy: Policy) -> list[RunOnGold]:
    """Every labeling or scoring run of the policy's released versions with labeled items on gold pairs: how many
    and how many agree with gold (one grouped query; an older version's labels read in the gold set's keys, an
    answer whose label was split since not counted)."""
    gold_pairs = GoldLabel.objects.filter(policy=policy).values("pair_id")
    rows = (
        Candidate.objects.filter(
            run__policy_version__policy=policy,
            run__purpose__in=[LabelingRun.Purpose.LABELING, LabelingRun.Purpose.GOLD_SCORE],
            status=Candidate.Status.LABELED,
            pair_id__in=gold_pairs,
        )
        .annotate(gold_label=_gold_label_of_pair(policy.pk))
        .values("run_id", "run__policy_version_id", "label", "gold_label")
        .annotate(n=Count("id"))
        .order_by()
    )
    translations: dict[int, dict] = {}
    counts: dict[int, list[int]] = {}
    for row in rows:
        version_id = row["run__policy_version_id"]
        if version_id not in translations:
            translations[version_id] = forward_translation(version=PolicyVersion.objects.get(pk=version_id))
        label = translate(row["label"], translations[version_id])
        if label is None:
            continue
        entry = counts.setdefault(row["run_id"], [0, 0])
        entry[0] += row["n"]
        entry[1] += row["n"] if label == row["gold_label"] else 0
    runs = LabelingRun.objects.filter(pk__in=counts).select_related("policy_version", "teacher_config")
    return [RunOnGold(run, *counts[run.pk]) for run in runs.order_by("-created_at")]


def gold_score_runs(*, policy: Policy) -> QuerySet[LabelingRun]:
    return LabelingRun.objects.filter(policy_version__policy=policy, purpose=LabelingRun.Purpose.GOLD_SCORE)


def released_versions(*, policy: Policy) -> QuerySet[PolicyVersion]:
    return policy.versions.filter(status=PolicyVersion.Status.PUBLISHED).order_by("-number")
