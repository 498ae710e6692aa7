"""Reads for policy feedback: a policy's inbox (filtered, as the caller may see it), the flags on one review item,
and per rule the open flags and how often annotators overrode the teacher on items citing it.

Who sees what: policy owners and ML engineers (read-only) see every flag of a policy; an annotator sees their own.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Count, Prefetch, QuerySet

from policyhub import roles
from policyhub.models import RULE_ID_RE, Policy, PolicyVersion

from ..models import Candidate, LabelingRun, PolicyFeedback, PolicyFeedbackReopening, Review, TeacherSample

#: Roles that read every flag of a policy (annotators read their own).
READ_ALL = (roles.POLICY_OWNER, roles.ML_ENGINEER)
STATUSES = tuple(PolicyFeedback.Status.values)


def sees_all(user) -> bool:
    return roles.has_role(user, *READ_ALL)


def _visible(user) -> QuerySet[PolicyFeedback]:
    history = PolicyFeedbackReopening.objects.select_related("reopened_by", "previous_version", "previous_closed_by")
    qs = PolicyFeedback.objects.select_related(
        "policy", "version", "resolved_in_version", "created_by", "closed_by", "candidate", "pair__member", "pair__job"
    ).prefetch_related(Prefetch("reopenings", queryset=history))
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


#: A sample's cited rules, one row each: the JSON array unnested (PostgreSQL's jsonb, SQLite's JSON1 functions).
_CITED = {
    "postgresql": "CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(s.cited_rules) = 'array' "
    "THEN s.cited_rules ELSE '[]'::jsonb END) AS cited(rule)",
    "sqlite": "CROSS JOIN json_each(CASE WHEN json_type(s.cited_rules) = 'array' THEN s.cited_rules ELSE '[]' END) "
    "AS cited",
}
_CITED_RULE = {"postgresql": "cited.rule", "sqlite": "cited.value"}
_OVERRIDES = """
WITH reviewed AS (
    SELECT c.id, c.run_id, c.pair_id, c.label,
           EXISTS (SELECT 1 FROM {review} r WHERE r.candidate_id = c.id AND r.kind = %s AND r.label <> c.label)
               AS overridden
    FROM {candidate} c JOIN {run} lr ON lr.id = c.run_id JOIN {version} v ON v.id = lr.policy_version_id
    WHERE {scope} = %s AND lr.purpose = %s AND c.status = %s AND c.label <> ''
      AND EXISTS (SELECT 1 FROM {review} r WHERE r.candidate_id = c.id AND r.kind = %s)
), citing AS (
    SELECT DISTINCT i.id, {rule} AS rule, i.overridden
    FROM reviewed i JOIN {sample} s
      ON s.run_id = i.run_id AND s.pair_id = i.pair_id AND s.error_kind = '' AND s.label = i.label
    {cited}
)
SELECT rule, COUNT(*), SUM(CASE WHEN overridden THEN 1 ELSE 0 END) FROM citing GROUP BY rule
"""


def _rule_overrides(*, policy_id: int | None = None, version_id: int | None = None) -> list[tuple[str, int, int]]:
    """(rule, reviewed items citing it, of them overridden) over the labeling runs of a policy or of one of its
    versions, in one grouped query."""
    vendor = connection.vendor if connection.vendor in _CITED else "postgresql"
    scope, scope_id = ("v.policy_id", policy_id) if version_id is None else ("lr.policy_version_id", version_id)
    sql = _OVERRIDES.format(
        review=Review._meta.db_table, candidate=Candidate._meta.db_table, run=LabelingRun._meta.db_table,
        version=PolicyVersion._meta.db_table, sample=TeacherSample._meta.db_table, rule=_CITED_RULE[vendor],
        cited=_CITED[vendor], scope=scope,
    )  # fmt: skip
    params = [Review.Kind.REVIEW, scope_id, LabelingRun.Purpose.LABELING, Candidate.Status.LABELED, Review.Kind.REVIEW]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def version_rule_figures(*, version_id: int) -> dict:
    """A version's per-rule counts over its labeling runs, computed from scratch, as JSON (the kept figures of the
    draft editor, ``labeling.services.figures``): {"rules": {rule: [reviewed, overridden]}, "size": reviews}."""
    reviews = Review.objects.filter(
        kind=Review.Kind.REVIEW,
        candidate__run__policy_version_id=version_id,
        candidate__run__purpose=LabelingRun.Purpose.LABELING,
    ).count()
    rows = _rule_overrides(version_id=version_id)
    return {"size": reviews, "rules": {rule: [int(n), int(over or 0)] for rule, n, over in rows}}


@dataclass(frozen=True)
class RuleOverrides:
    """Per rule (reviewed, overridden) over the policy's labeling runs; from kept figures, as of ``computed_at``
    (the oldest of its versions') and ``stale`` when any of them has newer changes on their way."""

    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    computed_at: datetime | None = None
    stale: bool = False


def rule_overrides_from_snapshots(snapshots) -> RuleOverrides:
    """The sum of the versions' kept per-rule counts: an item belongs to one run, so to one version, and is counted
    once per rule in it."""
    counts: dict[str, list[int]] = {}
    snapshots = list(snapshots)
    for snapshot in snapshots:
        for rule, (reviewed, overridden) in snapshot.figures["rules"].items():
            total = counts.setdefault(rule, [0, 0])
            total[0] += reviewed
            total[1] += overridden
    return RuleOverrides(
        counts={rule: (n, over) for rule, (n, over) in counts.items()},
        computed_at=min((s.computed_at for s in snapshots), default=None),
        stale=any(s.stale for s in snapshots),
    )


def rule_feedback(*, policy: Policy, overrides: RuleOverrides | None = None) -> dict[str, RuleFeedback]:
    """Per rule ID of the policy (IDs are stable across versions): the open flags citing it, and the reviewed items
    of the policy's labeling runs whose teacher answer cited it, with how many of them annotators overrode.

    An item is *reviewed* once an annotator reviewed it; its teacher's *cited rules* are those of the samples that
    gave the teacher's label (as on the agreement page); it was *overridden* when at least one annotator's review
    gave another label than the teacher's. ``overrides`` gives those counts (the editor passes the kept figures,
    ``labeling.services.figures.rule_overrides``); by default they are counted here, in one grouped SQL query over
    every reviewed item of the policy. One query for the flags."""
    stats: dict[str, RuleFeedback] = {}

    def at(rule: str) -> RuleFeedback:
        return stats.setdefault(rule, RuleFeedback(rule))

    open_flags = PolicyFeedback.objects.filter(policy=policy, status=PolicyFeedback.Status.OPEN)
    for rule_ids in open_flags.values_list("rule_ids", flat=True).iterator(chunk_size=2000):
        for rule in rule_ids or ():
            at(rule).open_flags += 1

    if overrides is None:
        counts = {rule: (n, over) for rule, n, over in _rule_overrides(policy_id=policy.pk)}
    else:
        counts = overrides.counts
    for rule, (reviewed, overridden) in counts.items():
        row = at(rule)
        row.reviewed, row.overridden = int(reviewed), int(overridden or 0)
    return stats
