"""Reads for human review: the item an annotator sees, the queue's count and runs, the adjudication queue."""

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from policyhub.markdown import render_markdown

from ..models import Candidate, LabelingRun, Review, ReviewSkip, ReviewState, TeacherSample

REASON_TEXT = {
    "self_disagreement": "The teacher's samples disagree with each other.",
    "low_confidence": "The teacher's probability for its label is below the run's threshold.",
    "teacher_disagreement": "Another run of this policy version labeled the pair differently.",
    "gold_conflict": "A gold label says otherwise.",
    "trust_check_failed": "A trust check on the teacher's answer failed.",
    "suspected_injection": "The member's or the job's text holds text aimed at a model (highlighted).",
    "student_disagreement": "A student model trained on an export of these labels gave another label.",
}
#: Pair fields the review page shows as text, by the name ``labeling.pipeline.injection`` gives them.
MARKABLE = ("member.headline", "member.summary", "member.location", "job.title", "job.description", "job.location")


@dataclass
class ReviewSample:
    """One teacher answer as the reviewer sees it: its cited rules come with their text from the run's version."""

    sample: TeacherSample
    rules: list[dict] = field(default_factory=list)


@dataclass
class ReviewItem:
    candidate: Candidate
    labels: list[dict]
    samples: list[ReviewSample]
    distribution: list[dict]
    reasons: list[dict]
    failed_checks: list[dict]
    policy_html: str
    injection: list[dict] = field(default_factory=list)  # what the pair's text holds for a model
    marked: dict[str, list[dict]] = field(default_factory=dict)  # "job_description" -> segments, for those with spans
    marked_skills: dict[str, set[int]] = field(default_factory=dict)  # "member" -> indexes of flagged skills


def marked_segments(text: str, spans: list[dict]) -> list[dict]:
    """``text`` cut into [{text, kind}] pieces, ``kind`` set on the pieces inside a span (escaped when rendered)."""
    pieces, at = [], 0
    for span in sorted(spans, key=lambda s: s["start"]):
        start, end = max(span["start"], at), min(span["end"], len(text))
        if start >= end:
            continue
        if start > at:
            pieces.append({"text": text[at:start], "kind": ""})
        pieces.append({"text": text[start:end], "kind": span["kind"]})
        at = end
    if at < len(text):
        pieces.append({"text": text[at:], "kind": ""})
    return pieces


def _marks(candidate: Candidate) -> tuple[dict, dict]:
    """The segments of each pair field with flagged spans, and the flagged skills, from ``candidate.injection``."""
    by_field: dict[str, list[dict]] = {}
    skills: dict[str, set[int]] = {}
    for span in candidate.injection or []:
        name = span.get("field", "")
        if "[" in name:  # a list item: member.skills[2]
            side, index = name.split(".")[0], int(name.rsplit("[", 1)[1].rstrip("]"))
            skills.setdefault(side, set()).add(index)
        elif name in MARKABLE:
            by_field.setdefault(name, []).append(span)
    pair = candidate.pair
    sides = {"member": pair.member, "job": pair.job}
    marked = {
        name.replace(".", "_"): marked_segments(
            str(getattr(sides[name.split(".")[0]], name.split(".")[1]) or ""), spans
        )
        for name, spans in by_field.items()
    }
    return marked, skills


def soft_label(*, candidate: Candidate) -> list[dict]:
    """The candidate's label distribution in the order of its version's labels."""
    version = candidate.run.policy_version
    return [
        {
            "key": label["key"],
            "title": label.get("title", label["key"]),
            "p": candidate.label_distribution.get(label["key"]) or 0,
        }
        for label in version.labels
    ]


def review_item(*, candidate: Candidate) -> ReviewItem:
    """Everything the review page shows about one candidate (loaded with run → version, pair → member, job)."""
    version = candidate.run.policy_version
    rules = {rule["id"]: rule.get("text", "") for rule in version.rules}
    samples = TeacherSample.objects.filter(run_id=candidate.run_id, pair_id=candidate.pair_id).order_by("sample_index")
    marked, marked_skills = _marks(candidate)
    return ReviewItem(
        candidate=candidate,
        labels=[{**label, "number": index} for index, label in enumerate(version.labels, start=1)],
        samples=[
            ReviewSample(
                sample=sample,
                rules=[
                    {"id": rid, "text": rules.get(rid, "(not a rule of this version)")} for rid in sample.cited_rules
                ],
            )
            for sample in samples
        ],
        distribution=soft_label(candidate=candidate),
        reasons=[{"key": reason, "text": REASON_TEXT[reason]} for reason in candidate.reasons],
        failed_checks=[
            {"name": name, "detail": (check or {}).get("detail", "")}
            for name, check in (candidate.trust or {}).items()
            if isinstance(check, dict) and check.get("ok") is False
        ],
        policy_html=render_markdown(version.body),
        injection=list(candidate.injection or []),
        marked=marked,
        marked_skills=marked_skills,
    )


QUEUE_COUNT_CAP = 1000


def review_queue_count(*, user, run_id: int | None = None, reason: str = "", cap: int = QUEUE_COUNT_CAP) -> int:
    """Items waiting for a review that this annotator may still take (not reviewed or skipped by them), counted up
    to ``cap + 1``: the exact figure only matters near the end of the queue, and counting 300,000 pending items on
    every item served would cost more than the claim itself."""
    qs = (
        Candidate.objects.filter(review_state=ReviewState.PENDING)
        .exclude(Exists(Review.objects.filter(candidate=OuterRef("pk"), reviewer=user)))
        .exclude(Exists(ReviewSkip.objects.filter(candidate=OuterRef("pk"), reviewer=user)))
    )
    if run_id:
        qs = qs.filter(run_id=run_id)
    if reason in Candidate.REASONS:
        qs = qs.filter(**{f"reason_{reason}": True})
    return qs.order_by()[: cap + 1].count()


def review_runs() -> QuerySet[LabelingRun]:
    """Runs with items waiting for review (the review queue's run filter)."""
    pending = Candidate.objects.filter(run=OuterRef("pk"), review_state=ReviewState.PENDING)
    return LabelingRun.objects.filter(Exists(pending)).select_related("policy_version__policy", "teacher_config")


def _with_reviews(qs: QuerySet[Candidate]) -> QuerySet[Candidate]:
    reviews = Review.objects.select_related("reviewer").order_by("created_at", "id")
    return qs.select_related(
        "run__policy_version__policy", "run__teacher_config", "pair__member", "pair__job"
    ).prefetch_related(Prefetch("reviews", queryset=reviews))


def adjudication_queue() -> QuerySet[Candidate]:
    """Items whose reviewers disagree, oldest first, with every review and its reviewer (no query per item)."""
    return _with_reviews(Candidate.objects.filter(review_state=ReviewState.ADJUDICATION)).order_by("id")


def adjudication_item(*, pk: int) -> Candidate:
    return _with_reviews(Candidate.objects.all()).get(pk=pk)


def adjudication_recent(*, limit: int = 20) -> QuerySet[Review]:
    """The latest adjudications: the decision, who made it and why."""
    return (
        Review.objects.filter(kind=Review.Kind.ADJUDICATION)
        .select_related("reviewer", "candidate__pair__member", "candidate__pair__job", "candidate__run")
        .order_by("-created_at", "-id")[:limit]
    )
