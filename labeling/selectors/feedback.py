"""Reads for policy feedback: a policy's inbox (filtered, as the caller may see it), the flags on one review item,
and per rule the open flags and how often annotators overrode the teacher on items citing it.

Who sees what: policy owners and ML engineers (read-only) see every flag of a policy; an annotator sees their own.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from policyhub import roles
from policyhub.models import RULE_ID_RE, Policy

from ..models import Candidate, LabelingRun, PolicyFeedback, Review, TeacherSample

#: Roles that read every flag of a policy (annotators read their own).
READ_ALL = (roles.POLICY_OWNER, roles.ML_ENGINEER)
STATUSES = tuple(PolicyFeedback.Status.values)


def sees_all(user) -> bool:
    return roles.has_role(user, *READ_ALL)


def _visible(user) -> QuerySet[PolicyFeedback]:
    qs = PolicyFeedback.objects.select_related(
        "policy", "version", "resolved_in_version", "created_by", "closed_by", "candidate", "pair__member", "pair__job"
    )
    if sees_all(user):
        return qs
    if roles.has_role(user, roles.ANNOTATOR):
        return qs.filter(created_by=user)
    return qs.none()


def feedback_list(
    *, user, policy: Policy, status: str = "", resolved_in: int | None = None, rule: str = "", kind: str = ""
) -> QuerySet[PolicyFeedback]:
    """The policy's feedback the caller may see, newest first: ``status`` open / resolved / dismissed,
    ``resolved_in`` a version number (resolved in it), ``rule`` a rule ID it cites, ``kind`` one of the kinds."""
    qs = _visible(user).filter(policy=policy)
    if status in STATUSES:
        qs = qs.filter(status=status)
    if resolved_in is not None:
        qs = qs.filter(status=PolicyFeedback.Status.RESOLVED, resolved_in_version__number=resolved_in)
    if rule:  # the quoted ID in the JSON text: R1 never matches R10 (SQLite has no JSON @>); no rule is "R1%"
        qs = qs.filter(rule_ids__icontains=f'"{rule}"') if RULE_ID_RE.match(rule) else qs.none()
    if kind in PolicyFeedback.Kind.values:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at", "-id")


def feedback_counts(*, user, policy: Policy) -> dict[str, int]:
    """How many of the policy's flags the caller may see are open, resolved and dismissed."""
    rows = _visible(user).filter(policy=policy).order_by().values("status").annotate(n=Count("id"))
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def feedback_get(*, user, pk: int) -> PolicyFeedback:
    return _visible(user).get(pk=pk)


def feedback_on_item(*, user, candidate: Candidate) -> list[PolicyFeedback]:
    """The flags on this review item the caller may see (an annotator: their own), oldest first."""
    return list(_visible(user).filter(candidate=candidate).order_by("created_at", "id"))


@dataclass
class RuleFeedback:
    """What the draft editor shows next to a rule: open flags citing it, and over the reviewed items whose teacher
    label came with this rule cited, how many an annotator labelled otherwise."""

    rule: str
    open_flags: int = 0
    reviewed: int = 0
    overridden: int = 0

    @property
    def override_share(self) -> float | None:
        return self.overridden / self.reviewed if self.reviewed else None


def rule_feedback(*, policy: Policy) -> dict[str, RuleFeedback]:
    """Per rule ID of the policy (IDs are stable across versions): the open flags citing it, and the reviewed items
    of the policy's labeling runs whose teacher answer cited it, with how many of them annotators overrode.

    An item is *reviewed* once an annotator reviewed it; its teacher's *cited rules* are those of the samples that
    gave the teacher's label (as on the agreement page); it was *overridden* when at least one annotator's review
    gave another label than the teacher's."""
    stats: dict[str, RuleFeedback] = {}

    def at(rule: str) -> RuleFeedback:
        return stats.setdefault(rule, RuleFeedback(rule))

    open_flags = PolicyFeedback.objects.filter(policy=policy, status=PolicyFeedback.Status.OPEN)
    for rule_ids in open_flags.values_list("rule_ids", flat=True).iterator(chunk_size=2000):
        for rule in rule_ids or ():
            at(rule).open_flags += 1

    reviews = Review.objects.filter(candidate=OuterRef("pk"), kind=Review.Kind.REVIEW)
    reviewed = (
        Candidate.objects.filter(
            run__policy_version__policy=policy, run__purpose=LabelingRun.Purpose.LABELING, status="labeled"
        )
        .exclude(label="")
        .filter(Exists(reviews))
        .annotate(overridden=Exists(reviews.filter(~Q(label=OuterRef("label")))))
    )
    agreeing = TeacherSample.objects.filter(
        run__policy_version__policy=policy, run__purpose=LabelingRun.Purpose.LABELING, error_kind=""
    ).filter(Exists(reviewed.filter(run=OuterRef("run"), pair=OuterRef("pair"), label=OuterRef("label"))))
    cited: dict[tuple[int, int], set[str]] = defaultdict(set)
    # fetched whole, as the agreement's samples: a server-side cursor plans the semi-join from the samples' side
    for run_id, pair_id, rules in agreeing.values_list("run_id", "pair_id", "cited_rules"):
        cited[run_id, pair_id].update(rules or ())
    for run_id, pair_id, overridden in reviewed.values_list("run_id", "pair_id", "overridden").iterator(
        chunk_size=5000
    ):
        for rule in cited.get((run_id, pair_id), ()):
            row = at(rule)
            row.reviewed += 1
            row.overridden += int(overridden)
    return stats
