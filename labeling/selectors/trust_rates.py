"""Trust-check rates of runs and policy versions, counted by the database in one grouped query.

Every rate is over **candidates** (one per run × pair: its K answers checked together, one failing answer fails
the candidate), each as (count, total, rate):

* ``hallucination`` — candidates whose ``facts_grounded`` check failed (a claim not in this member or job),
  over the checked candidates (labeled: the checks ran on their answers; failed requests have no answer to check);
* ``injection`` — pairs whose member or job text holds text aimed at a model (``suspected_injection``), over the
  labeled candidates; ``injection_followed`` — of those, the candidates whose answer followed it
  (``follows_data_instructions`` failed);
* ``tone`` — ``tone`` failed, over the checked candidates;
* ``judge`` — ``judge_verdict`` failed, over the candidates a judge saw; ``None`` when no judge ran ("no judge");
* ``any_check`` — any trust check failed (``trust_ok`` false), over the checked candidates.

A **version's** rates add up its ``labeling`` runs (every provider, the heuristic baseline included: their labels
are what review and exports use). Gold-set scoring and draft-preview runs re-label the gold pairs to measure a
version or a draft; they are listed with their own rates in ``runs`` but left out of the version's total, so the
same gold pairs are not counted once per scoring and a draft's wording does not count against a published version.
"""

from dataclasses import dataclass, field

from django.db.models import Count, Q

from ..models import Candidate, LabelingRun, TeacherSample, flagged_q

LABELED = Q(status=Candidate.Status.LABELED)
#: every check of ``labeling.pipeline.trust.CHECKS`` runs on every labeled candidate, recorded with ``trust_ok``
CHECKED = LABELED & Q(trust_ok__isnull=False)
#: a failed check makes ``trust_ok`` false: the cheap column is asked first, the JSON only for the few that failed
FAILED = CHECKED & Q(trust_ok=False)
_INJECTED = LABELED & Q(reason_suspected_injection=True)

#: aggregate name → the candidates it counts; numerators are always a subset of their denominator. The judge is
#: optional and written by another step: its verdict is ``judge_ok``, a column the database derives from ``trust``.
_COUNTS = {
    "labeled": LABELED,
    "checked": CHECKED,
    "facts_failed": FAILED & Q(trust__facts_grounded__ok=False),
    "tone_failed": FAILED & Q(trust__tone__ok=False),
    "injected": _INJECTED,
    "followed": _INJECTED & Q(trust_ok=False) & Q(trust__follows_data_instructions__ok=False),
    "judged": Q(judge_ok__isnull=False),
    "judge_failed": Q(judge_ok=False),
    "any_failed": FAILED,
}

#: rate name → (numerator, denominator) among the counts above
RATES = {
    "hallucination": ("facts_failed", "checked"),
    "injection": ("injected", "labeled"),
    "injection_followed": ("followed", "injected"),
    "tone": ("tone_failed", "checked"),
    "judge": ("judge_failed", "judged"),
    "any_check": ("any_failed", "checked"),
}


@dataclass(frozen=True)
class Rate:
    count: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.count / self.total if self.total else None

    @property
    def percent(self) -> float | None:
        return None if self.rate is None else round(100 * self.rate, 1)

    def as_dict(self) -> dict:
        return {"count": self.count, "total": self.total, "rate": None if self.rate is None else round(self.rate, 6)}


@dataclass(frozen=True)
class TrustRates:
    counts: dict[str, int]

    def __getattr__(self, name: str) -> Rate | None:
        if name not in RATES:
            raise AttributeError(name)
        count, total = RATES[name]
        if name == "judge" and not self.counts[total]:
            return None  # no judge saw any of these candidates
        return Rate(self.counts[count], self.counts[total])

    @property
    def has_judge(self) -> bool:
        return bool(self.counts["judged"])

    @property
    def rows(self) -> list[tuple[str, Rate | None]]:
        """(rate name, rate) in display order, for templates."""
        return [(name, getattr(self, name)) for name in RATES]

    def as_dict(self) -> dict:
        return {name: (rate.as_dict() if rate else None) for name, rate in self.rows} | {
            "candidates": self.counts["labeled"]
        }

    def __add__(self, other: "TrustRates") -> "TrustRates":
        return TrustRates({key: self.counts[key] + other.counts[key] for key in _COUNTS})


EMPTY = TrustRates(dict.fromkeys(_COUNTS, 0))


@dataclass(frozen=True)
class RunRates:
    run: LabelingRun
    rates: TrustRates


@dataclass(frozen=True)
class VersionRates:
    """A version's total (its labeling runs) and every run of it with its own rates."""

    total: TrustRates
    runs: list[RunRates] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            **self.total.as_dict(),
            "counted_runs": [r.run.pk for r in self.runs if r.run.purpose == LabelingRun.Purpose.LABELING],
            "runs": [
                {"id": r.run.pk, "purpose": r.run.purpose, "teacher": r.run.teacher_config.name, **r.rates.as_dict()}
                for r in self.runs
            ],
        }


def _by_run(candidates) -> dict[int, TrustRates]:
    aggregates = {name: Count("id", filter=condition) for name, condition in _COUNTS.items()}
    rows = candidates.order_by().values("run_id").annotate(**aggregates)
    return {row.pop("run_id"): TrustRates(row) for row in rows}


def run_trust_rates(*, run: LabelingRun) -> TrustRates:
    return _by_run(Candidate.objects.filter(run=run)).get(run.pk, EMPTY)


def runs_trust_rates(*, run_ids: list[int]) -> dict[int, TrustRates]:
    """{run id: rates} of the given runs (one query); runs without candidates get zero counts."""
    found = _by_run(Candidate.objects.filter(run_id__in=run_ids))
    return {pk: found.get(pk, EMPTY) for pk in run_ids}


def total_rates(rates) -> TrustRates:
    return sum(rates, EMPTY)


def version_trust_rates(*, version, rates_of=None) -> VersionRates:
    """Two queries: the version's runs, and the grouped counts of their candidates; or ``rates_of(runs)`` gives
    {run id: rates} (the pages pass each finished run's kept figures, ``labeling.services.figures.runs_trust``)."""
    runs = list(LabelingRun.objects.filter(policy_version=version).select_related("teacher_config").order_by("pk"))
    # by run id: no join with the runs
    by_run = runs_trust_rates(run_ids=[run.pk for run in runs]) if rates_of is None else rates_of(runs)
    listed = [RunRates(run, by_run[run.pk]) for run in runs]
    total = total_rates(r.rates for r in listed if r.run.purpose == LabelingRun.Purpose.LABELING)
    return VersionRates(total=total, runs=listed)


def run_flagged(*, run: LabelingRun):
    """The run's candidates a trust check flagged (``flagged_q``), with what the run page's list shows."""
    return (
        Candidate.objects.filter(flagged_q(), run=run)
        .select_related("pair__member", "pair__job")
        .only(
            "pair__member__external_id", "pair__member__headline", "pair__job__external_id", "pair__job__title",
            "run_id", "label", "trust", "injection", "review_state", "approved_by",
        )
        .order_by("id")
    )  # fmt: skip


def attach_rationales(candidates) -> list[Candidate]:
    """Give each candidate (of one page) ``rationale``: its first answered sample's, in one query."""
    candidates = list(candidates)
    if not candidates:
        return candidates
    samples = (
        TeacherSample.objects.filter(run_id=candidates[0].run_id, pair_id__in=[c.pair_id for c in candidates])
        .filter(error_kind="")
        .order_by("pair_id", "sample_index")
        .values_list("pair_id", "rationale")
    )
    first: dict[int, str] = {}
    for pair_id, rationale in samples:
        first.setdefault(pair_id, rationale)
    for candidate in candidates:
        candidate.rationale = first.get(candidate.pair_id, "")
    return candidates
