"""Storing a run's answers and deciding its candidates: samples and cache entries, the aggregated soft label, the
trust checks, the routing (auto-accept or review) and the teacher-disagreement flags on other teachers' runs.

Online chunks and batch ingestion write through :func:`write_answers`, inside the transaction that also records
their progress (a chunk's lease, a batch's completion), so a re-delivered task finds its work done.
"""

from django.db import connection
from django.db.models import F
from django.utils import timezone

from policyhub.labelmap import translate
from policyhub.selectors import forward_translation

from ..models import ApprovedBy, Candidate, GoldLabel, LabelingRun, TeacherSample
from ..teacher import TeacherAnswer
from . import injection, judge, routing, trust
from .context import RunContext
from .db import bulk_update, store_cache, store_samples
from .judge import Judged
from .pricing import price
from .requests import Key

#: First key of the transaction-level advisory lock that serialises routing between teachers of one version.
ROUTING_LOCK_NAMESPACE = 0x7EAC
#: The candidate columns aggregation writes.
DECIDED_FIELDS = [
    "status", "label", "label_distribution", "vote_share", "confidence", "samples_ok", "trust", "trust_ok", "routing",
    "error", *[f"reason_{r}" for r in Candidate.REASONS], "updated_at", "review_state", "reviews_needed",
    "approved_label", "approved_by", "approved_at", "injection",
]  # fmt: skip


def write_answers(ctx: RunContext, candidates: list[Candidate], facts: dict, answers: dict[Key, TeacherAnswer],
                  keys: dict[Key, str], judged: Judged | None = None) -> bool:  # fmt: skip
    """Store ``answers`` as samples, cache the valid fresh ones, aggregate the candidates they complete and add
    to the run's counters; ``judged``: the judge's replies on them (a run with a judge), cached and counted
    too. Call inside a transaction. Returns True if every candidate has all its samples."""
    run = ctx.run
    store_samples(run.pk, answers)
    store_cache(ctx.params["model"], keys, [a for a in answers.values() if a.ok and not a.cached])
    complete = aggregate_candidates(ctx, candidates, facts, answers)
    paid = [a for a in answers.values() if not a.cached]
    input_tokens, output_tokens = sum(a.input_tokens for a in paid), sum(a.output_tokens for a in paid)
    cached_input = sum(a.cached_input_tokens for a in paid)
    LabelingRun.objects.filter(pk=run.pk).update(
        **(_store_judged(run, judged) if judged and judged.answers else {}),
        samples_done=F("samples_done") + sum(1 for a in answers.values() if a.ok),
        samples_failed=F("samples_failed") + sum(1 for a in answers.values() if not a.ok),
        samples_cached=F("samples_cached") + sum(1 for a in answers.values() if a.cached),
        input_tokens=F("input_tokens") + input_tokens,
        cached_input_tokens=F("cached_input_tokens") + cached_input,
        output_tokens=F("output_tokens") + output_tokens,
        cost=F("cost") + price(run.config_snapshot, input_tokens, output_tokens, run.mode, cached_input),
    )
    return complete


def _store_judged(run: LabelingRun, judged: Judged) -> dict:
    """Cache the judge's fresh readable replies and return the increments of the run's judge counters (the
    judge is priced online)."""
    replies = judged.answers
    store_cache(run.judge_snapshot["model"], judged.keys, [r for r in replies if r.ok and not r.cached],
                payload=judge.cache_payload)  # fmt: skip
    paid = [r for r in replies if not r.cached]
    input_tokens, output_tokens = sum(r.input_tokens for r in paid), sum(r.output_tokens for r in paid)
    cached_input = sum(r.cached_input_tokens for r in paid)
    return {
        "judge_requests": F("judge_requests") + len(replies),
        "judge_cached": F("judge_cached") + sum(1 for r in replies if r.cached),
        "judge_failed": F("judge_failed") + sum(1 for r in replies if not r.ok),
        "judge_input_tokens": F("judge_input_tokens") + input_tokens,
        "judge_cached_input_tokens": F("judge_cached_input_tokens") + cached_input,
        "judge_output_tokens": F("judge_output_tokens") + output_tokens,
        "judge_cost": F("judge_cost")
        + price(run.judge_snapshot, input_tokens, output_tokens, cached_input_tokens=cached_input),
    }


def samples_by_pair(run: LabelingRun, pair_ids: list[int], k: int, answers: dict) -> dict[int, list]:
    """Each pair's stored samples. ``answers`` were just stored: a pair whose K samples are all among them is
    taken from memory, the others are read back (only the fields aggregation and trust checks use)."""
    by_pair: dict[int, list] = {}
    read_back = []
    for pair_id in pair_ids:
        mine = [answers.get((pair_id, index)) for index in range(k)]
        if all(mine):
            by_pair[pair_id] = mine
        else:
            read_back.append(pair_id)
    if read_back:
        fields = (
            "pair_id", "sample_index", "label", "rationale", "cited_rules", "label_probs", "error_kind", "error",
            "judge",
        )  # fmt: skip
        for sample in TeacherSample.objects.filter(run=run, pair_id__in=read_back).only(*fields):
            by_pair.setdefault(sample.pair_id, []).append(sample)
    return by_pair


class _Decider:
    """Decides the candidates of one write: what every candidate's decision reads once (the other teachers'
    labels, gold labels, the thresholds)."""

    def __init__(self, ctx: RunContext, pair_ids: list[int], facts: dict):
        run = ctx.run
        self.ctx, self.facts, self.now = ctx, facts, timezone.now()
        lock_routing_against_other_teachers(run)
        self.others = other_run_labels(run, pair_ids)
        gold = GoldLabel.objects.filter(policy=run.policy_version.policy, pair_id__in=pair_ids)
        self.gold = dict(gold.values_list("pair_id", "label"))
        # gold holds the newest version's keys: an older version's answers are compared through the later mappings
        self.translation = forward_translation(version=run.policy_version)
        self.limits = routing.thresholds_with_defaults(run.thresholds)
        self.settings = trust.settings_with_defaults(run.checks)
        # the heuristic baseline does not read the policy, so it cites no rule: that is not a failure of its answers
        reads_policy = run.config_snapshot["provider"] != "heuristic"
        self.require_citation = self.settings["require_rule_citation"] and reads_policy
        self.judged = bool(run.judge_snapshot)
        self.disagreeing: set[int] = set()

    def _gold_label(self, pair_id: int, label: str) -> str | None:
        """The pair's gold label as routing compares it with ``label``: the answer's own label when its key in the
        gold set agrees, None when that cannot be told (the label was split since)."""
        gold = self.gold.get(pair_id)
        if gold is None or not self.translation:
            return gold
        translated = translate(label, self.translation)
        return None if translated is None else (label if translated == gold else gold)

    def decide(self, candidate: Candidate, samples: list) -> None:
        """Aggregate a candidate's K samples, check them and route it (all samples failed: the candidate fails)."""
        ok = [s for s in samples if s.ok]
        candidate.samples_ok, candidate.updated_at = len(ok), self.now
        if not ok:
            candidate.status, candidate.routing = Candidate.Status.FAILED, Candidate.Routing.NONE
            candidate.error = "; ".join(sorted({f"{s.error_kind}: {s.error}"[:300] for s in samples}))
            return
        space, k = self.ctx.space, self.ctx.k
        matches = self._scan(candidate)
        checks = self._check(candidate, ok, matches)
        trust_ok = all(check["ok"] for check in checks.values())
        agg = routing.aggregate(ok, space.labels, samples_requested=k)
        other_labels = self.others.get(candidate.pair_id, set())
        routing.route(
            agg, thresholds=self.limits, samples_requested=k, trust_ok=trust_ok, other_labels=other_labels,
            gold_label=self._gold_label(candidate.pair_id, agg.label), suspected_injection=bool(matches),
        )  # fmt: skip
        if other_labels - {agg.label}:
            self.disagreeing.add(candidate.pair_id)
        candidate.status, candidate.label, candidate.error = Candidate.Status.LABELED, agg.label, ""
        candidate.label_distribution, candidate.vote_share, candidate.confidence = (
            agg.distribution, agg.vote_share, agg.confidence,
        )  # fmt: skip
        candidate.trust, candidate.trust_ok, candidate.routing = checks, trust_ok, agg.routing
        for reason in Candidate.REASONS:
            setattr(candidate, f"reason_{reason}", reason in agg.reasons)
        self._settle(candidate)

    def _scan(self, candidate: Candidate) -> list[injection.Match]:
        """What the pair's text holds for a model (with the policy's labels and rules), kept on the candidate."""
        if not self.settings["scan_for_injection"]:
            candidate.injection = []
            return []
        member, job = self.facts[candidate.pair_id]
        space = self.ctx.space
        matches = injection.scan_pair(member, job, labels=space.labels, rule_ids=space.rule_ids)
        candidate.injection = [m.as_dict() for m in matches]
        return matches

    def _check(self, candidate: Candidate, ok: list, matches: list[injection.Match]) -> dict:
        member, job = self.facts[candidate.pair_id]
        checked: dict = {}  # a pair's identical answers (its K samples at temperature 0, say) are checked once
        per_answer = []
        for s in ok:
            same = (s.label, s.rationale, tuple(s.cited_rules), repr(s.judge))
            if same not in checked:
                checked[same] = trust.check_answer(
                    s, space=self.ctx.space, member=member, job=job, system_prompt=self.ctx.system_prompt,
                    injections=matches, require_citation=self.require_citation, judged=self.judged,
                )  # fmt: skip
            per_answer.append(checked[same])
        return trust.combine(per_answer)

    def _settle(self, candidate: Candidate) -> None:
        """Auto-accepted: the teacher's label is approved. Needs review: queue it, unless humans already decide.
        Scoring and preview runs only measure: nothing of theirs is queued or approved."""
        run = self.ctx.run
        if run.purpose != LabelingRun.Purpose.LABELING or candidate.humans_decide:
            return
        if candidate.routing == Candidate.Routing.AUTO_ACCEPTED:
            candidate.approve(candidate.label, by=ApprovedBy.TEACHER, at=self.now)
        else:
            candidate.queue(reviewers=run.reviewers_per_item)


def aggregate_candidates(ctx: RunContext, candidates: list[Candidate], facts: dict, answers: dict) -> bool:
    """Decide every given candidate whose K samples are all in; True if all of them are."""
    pair_ids = [c.pair_id for c in candidates]
    by_pair = samples_by_pair(ctx.run, pair_ids, ctx.k, answers)
    decider = _Decider(ctx, pair_ids, facts)
    decided = []
    for candidate in candidates:
        samples = by_pair.get(candidate.pair_id, [])
        if len(samples) >= ctx.k:
            decider.decide(candidate, samples)
            decided.append(candidate)
    bulk_update(Candidate, decided, DECIDED_FIELDS)
    if decider.disagreeing:
        flag_other_teachers(ctx.run, decider.disagreeing)
    return len(decided) == len(candidates)


def lock_routing_against_other_teachers(run: LabelingRun) -> None:
    """``teacher_disagreement`` compares a pair's label with the other teachers' committed labels; two runs writing
    the same pair at once would each miss the other. So routing takes a transaction-level advisory lock on the
    policy version before reading their labels: writes of one version serialise from here to commit, and the later
    one (READ COMMITTED: a fresh snapshot per statement) sees the earlier one's labels and flags both. Held for the
    end of a flush only (tens of milliseconds). SQLite runs one writer at a time anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ROUTING_LOCK_NAMESPACE, run.policy_version_id])


def _other_labeling_candidates(run: LabelingRun, pair_ids):
    """Labeled candidates of the same pairs in the version's other labeling runs (only labeling runs compare)."""
    return Candidate.objects.filter(
        run__policy_version=run.policy_version, pair_id__in=pair_ids, run__purpose=LabelingRun.Purpose.LABELING
    ).exclude(run=run)


def other_run_labels(run: LabelingRun, pair_ids: list[int]) -> dict[int, set[str]]:
    """{pair id: labels other teachers gave it} under the run's version."""
    labels: dict[int, set[str]] = {}
    if run.purpose != LabelingRun.Purpose.LABELING:
        return labels
    rows = (
        _other_labeling_candidates(run, pair_ids)
        .filter(status=Candidate.Status.LABELED)
        .exclude(run__teacher_config=run.teacher_config)
        .values_list("pair_id", "label")
    )
    for pair_id, label in rows:
        labels.setdefault(pair_id, set()).add(label)
    return labels


def flag_other_teachers(run: LabelingRun, pair_ids: set[int]) -> None:
    """This run disagrees with other teachers on ``pair_ids``: their candidates need review too."""
    if run.purpose != LabelingRun.Purpose.LABELING:
        return
    others = _other_labeling_candidates(run, pair_ids)
    others.filter(status=Candidate.Status.LABELED).update(
        reason_teacher_disagreement=True, routing=Candidate.Routing.NEEDS_REVIEW, updated_at=timezone.now()
    )
    others.queue_unreviewed()
