"""Quality gates as a pure function: figures + thresholds → one result per gate (no ORM here).

``figures`` is plain data (``labeling.selectors.gates.gate_figures`` collects it; tests write it by hand)::

    {"preview": 12 | None,
     "gold": None | {"accuracy": 0.75 | None, "n": 4, "published_version": 1 | None,
                     "per_rule": {"R1": {"draft": 0.5 | None, "published": 1.0 | None, "n_draft": 2, "n_published": 2}},
                     "hallucination_rate": 0.0 | None},
     "red_team": None | {"run": 7, "attack_success_rate": {"injection": 0.1, …}, "flip_rate": 0.02 | None,
                         "flip_rate_by_attribute": {…}, "hallucination_rate": 0.0 | None, "variants": 40},
     "red_team_note": "why there are no red-team figures" (optional),
     "red_team_run": 7 (optional: the preview's red-team run that gave none, still running, failed or cancelled)}

``thresholds`` is ``QualityGates.thresholds()`` (``None``: the policy has no gates). A gate whose threshold is
``None`` is off and gives no result. A result is ``passed``, ``failed`` or ``not_measured``; ``blocking`` results
stop publishing unless a policy owner overrides them. A red-team gate without red-team figures is not measured and
blocks only when the policy requires a red-team run; a gold gate without its figure (no preview) blocks, except the
per-rule drop when there is no published version to compare with.
"""

from dataclasses import asdict, dataclass

PASSED, FAILED, NOT_MEASURED = "passed", "failed", "not_measured"

CATEGORY_NAMES = {
    "injection": "prompt injection",
    "protected_attribute": "protected attribute",
    "irrelevant_noise": "irrelevant noise",
    "hallucination_bait": "hallucination bait",
    "custom": "custom (uploaded)",
}


@dataclass(frozen=True)
class GateResult:
    key: str  # stable: min_gold_accuracy, max_rule_accuracy_drop, max_asr:injection, …
    name: str
    figure: float | None
    threshold: float
    direction: str  # "min": the figure must be at least the threshold; "max": at most
    status: str
    blocking: bool
    detail: str = ""
    red_team_run: int | None = None  # a red-team gate not measured because of this red-team run: the pages link it

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GateResult":
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _compare(
    key, name, figure, threshold, direction, *, detail="", about="", missing_blocks=True, missing=""
) -> GateResult:
    """``about``: what the figure was measured on, shown after it ("0.600 (5 gold pairs) not ≥ 0.900")."""
    if figure is None:
        return GateResult(key, name, None, threshold, direction, NOT_MEASURED, missing_blocks, missing or detail)
    ok = figure >= threshold if direction == "min" else figure <= threshold
    sign = "≥" if direction == "min" else "≤"
    if not detail:
        detail = f"{_fmt(figure)}{f' ({about})' if about else ''} {'' if ok else 'not '}{sign} {_fmt(threshold)}"
    return GateResult(key, name, figure, threshold, direction, PASSED if ok else FAILED, not ok, detail)


def _rule_drops(gold: dict) -> list[tuple[str, float, float, float]]:
    """(rule, published accuracy, draft accuracy, drop) for the rules both sides have a figure for."""
    drops = []
    for rule, row in (gold.get("per_rule") or {}).items():
        if row.get("draft") is not None and row.get("published") is not None:
            drops.append((rule, row["published"], row["draft"], row["published"] - row["draft"]))
    return drops


def _gold_gates(gold: dict | None, thresholds: dict) -> list[GateResult]:
    results = []
    no_preview = "not measured: no finished preview of the draft on the gold set"
    if (minimum := thresholds.get("min_gold_accuracy")) is not None:
        figure = gold.get("accuracy") if gold else None
        about = f"{gold.get('n', 0)} gold pairs" if gold else ""
        missing = no_preview if gold is None else "not measured: the preview labeled no gold pair"
        results.append(_compare("min_gold_accuracy", "Gold accuracy", figure, minimum, "min", about=about,
                                missing=missing))  # fmt: skip
    if (margin := thresholds.get("max_rule_accuracy_drop")) is not None:
        key, name = "max_rule_accuracy_drop", "Per-rule accuracy drop vs published"
        if gold is None:
            results.append(GateResult(key, name, None, margin, "max", NOT_MEASURED, True, no_preview))
        elif gold.get("published_version") is None:
            results.append(GateResult(key, name, None, margin, "max", NOT_MEASURED, False,
                                      "not measured: no published version to compare with"))  # fmt: skip
        elif not (drops := _rule_drops(gold)):
            results.append(GateResult(key, name, None, margin, "max", NOT_MEASURED, False,
                                      "not measured: no rule was cited under both versions"))  # fmt: skip
        else:
            worst = max(drops, key=lambda d: d[3])
            over = [d for d in drops if d[3] > margin]
            shown = over or [worst]
            detail = "; ".join(f"{r}: {_fmt(p)} → {_fmt(d)} (drop {_fmt(x)})" for r, p, d, x in shown)
            results.append(_compare(key, name, round(worst[3], 6), margin, "max", detail=detail))
    if (maximum := thresholds.get("max_hallucination_rate")) is not None:
        figure = gold.get("hallucination_rate") if gold else None
        missing = no_preview if gold is None else "not measured: no answer of the preview was checked"
        results.append(_compare("max_hallucination_rate:gold", "Hallucination rate (gold)", figure, maximum, "max",
                                missing=missing))  # fmt: skip
    return results


def _red_team_gates(red: dict | None, thresholds: dict, note: str, run: int | None = None) -> list[GateResult]:
    required = bool(thresholds.get("require_red_team_run"))
    absent = f"not measured: {note or 'no red-team run of this draft'}" + (
        " (a red-team run is required)" if required else " (not required)"
    )
    gates: list[tuple[str, str, float | None, float, str]] = []  # key, name, figure, threshold, missing text
    for category, maximum in (thresholds.get("max_attack_success_rate") or {}).items():
        if maximum is None:
            continue
        rates = (red.get("attack_success_rate") or {}) if red else {}
        name = f"Attack success rate: {CATEGORY_NAMES.get(category, category)}"
        gates.append((f"max_asr:{category}", name, rates.get(category), maximum,
                      f"not measured: the red-team run had no {category} variants"))  # fmt: skip
    if (maximum := thresholds.get("max_flip_rate")) is not None:
        gates.append(("max_flip_rate", "Counterfactual flip rate", red.get("flip_rate") if red else None, maximum,
                      "not measured: the red-team run had no protected-attribute variants"))  # fmt: skip
    if (maximum := thresholds.get("max_hallucination_rate")) is not None:
        gates.append(("max_hallucination_rate:red_team", "Hallucination rate (red team)",
                      red.get("hallucination_rate") if red else None, maximum,
                      "not measured: the red-team run checked no answer for hallucination"))  # fmt: skip
    results = []
    for key, name, figure, threshold, missing in gates:
        if red is None:
            results.append(GateResult(key, name, None, threshold, "max", NOT_MEASURED, required, absent, run))
        else:
            missing += " (a red-team run is required)" if required else ""
            results.append(_compare(key, name, figure, threshold, "max", missing_blocks=required, missing=missing))
    return results


def evaluate_gates(figures: dict, thresholds: dict | None) -> list[GateResult]:
    """One result per gate that is on, gold gates first, then red-team ones. ``[]``: no gates."""
    if not thresholds:
        return []
    return _gold_gates(figures.get("gold"), thresholds) + _red_team_gates(
        figures.get("red_team"), thresholds, figures.get("red_team_note", ""), figures.get("red_team_run")
    )


def evaluate_red_team_gates(red: dict, thresholds: dict | None) -> list[GateResult]:
    """Only the red-team gates, on one red-team run's figures (``manage.py redteam run --wait``)."""
    return _red_team_gates(red, thresholds, "") if thresholds else []


RELABEL_KEY = "gold_relabel"


def relabel_gate(mapping: dict | None) -> list[GateResult]:
    """The label mapping's gate (``figures["label_mapping"]``, None: the draft splits no label): every gold item
    of a split label has its new label. It is on whatever the policy's thresholds, and blocks like any gate."""
    if mapping is None:
        return []
    waiting, total = mapping["needs_relabel"], mapping["split_gold"]
    if waiting:
        detail = f"{waiting} of {total} gold item{'s' if total != 1 else ''} of split labels still need a new label"
    else:
        detail = f"all {total} gold item{'s' if total != 1 else ''} of split labels relabelled"
    ok = waiting == 0
    status = PASSED if ok else FAILED
    return [GateResult(RELABEL_KEY, "Gold relabelled after split", float(waiting), 0.0, "max", status, not ok, detail)]


def blocking(results: list[GateResult]) -> list[GateResult]:
    return [result for result in results if result.blocking]


def needs_gold(thresholds: dict | None) -> bool:
    """Whether any gate reads the gold preview (then publishing needs a fresh, finished one)."""
    return bool(thresholds) and any(
        thresholds.get(name) is not None
        for name in ("min_gold_accuracy", "max_rule_accuracy_drop", "max_hallucination_rate")
    )


def summary(results: list[GateResult]) -> str:
    """One line naming every blocking gate, e.g. "Gold accuracy 0.500 not ≥ 0.800"."""
    return "; ".join(f"{r.name}: {r.detail}" for r in blocking(results))
