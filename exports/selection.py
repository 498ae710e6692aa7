"""What an export contains: the filters, the split recipe, and the one SQL query that selects and shapes the rows.

One row per pair (a pair labelled by several of the chosen runs appears once: the human-approved candidate wins,
then the latest run). The database writes each row's JSON text itself, split included, so the writers only copy
bytes: Python never parses or re-encodes a row on the way to ``labels.jsonl``. The same inner query, with plain
columns, is the benchmark's ``COPY`` floor.

The JSON text is concatenated from constant pieces (keys, punctuation) and the values, with only texts quoted by
the database (``to_json`` / ``json_quote``): PostgreSQL's ``json_build_object`` looks up each argument's type for
every row, which cost more than selecting the rows did (29 s against 16 s for a million rows; concatenation: 21 s).
"""

import json
import math
from dataclasses import asdict, dataclass, field

from django.db import connection

from labeling.models import HUMAN_APPROVERS, ApprovedBy, Candidate, Seniority
from policyhub.models import PolicyVersion


class ExportError(ValueError):
    """Bad export input; ``field`` names what to fix."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _fraction(data: dict, key: str, default: float | None) -> float | None:
    raw = data.get(key, default)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ExportError(key, f"{key} must be a number between 0 and 1, not {raw!r}.") from None
    if not 0 <= value <= 1 or math.isnan(value):
        raise ExportError(key, f"{key} must be between 0 and 1, not {value}.")
    return value


def _flag(data: dict, key: str, default: bool) -> bool:
    raw = data.get(key, default)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off", ""):
        return raw.lower() in ("true", "1", "yes", "on")
    raise ExportError(key, f"{key} must be true or false, not {raw!r}.")


@dataclass(frozen=True)
class Filters:
    """Which candidates of the chosen runs to export. Defaults: every approved label."""

    approved_only: bool = True  # False: also labelled items still waiting for review, with the teacher's label
    reasons: tuple[str, ...] = ()  # only items routed to review for any of these reasons
    min_confidence: float | None = None  # the teacher's confidence (vote share or probability)
    min_agreement: float | None = None  # share of annotators agreeing with the approved label (teacher: vote share)
    human_only: bool = False  # approved by reviewers or an adjudicator
    gold_only: bool = False  # pairs in the policy's gold set
    include_flagged: bool = False  # also flagged items (failed trust check, suspected injection) no human approved

    @classmethod
    def from_dict(cls, data: dict | None) -> "Filters":
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ExportError(sorted(unknown)[0], f"Unknown filter {sorted(unknown)[0]!r}.")
        reasons = data.get("reasons") or ()
        if isinstance(reasons, str):
            reasons = [r for r in reasons.split(",") if r]
        bad = [r for r in reasons if r not in Candidate.REASONS]
        if bad:
            raise ExportError("reasons", f"Unknown routing reason {bad[0]!r}; one of {', '.join(Candidate.REASONS)}.")
        return cls(
            approved_only=_flag(data, "approved_only", True),
            reasons=tuple(sorted(set(reasons))),
            min_confidence=_fraction(data, "min_confidence", None),
            min_agreement=_fraction(data, "min_agreement", None),
            human_only=_flag(data, "human_only", False),
            gold_only=_flag(data, "gold_only", False),
            include_flagged=_flag(data, "include_flagged", False),
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class SplitRecipe:
    """Deterministic, grouped splits: a member's share of sha256(seed:member id) picks its split, so a member never
    spans two splits; with ``group_by_job`` members connected through a shared job are kept together too."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 0
    group_by_job: bool = False
    names: tuple[str, ...] = field(default=("train", "validation", "test"), init=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict | None) -> "SplitRecipe":
        data = dict(data or {})
        unknown = set(data) - {"train", "validation", "test", "seed", "group_by_job"}
        if unknown:
            raise ExportError(sorted(unknown)[0], f"Unknown split setting {sorted(unknown)[0]!r}.")
        ratios = {name: _fraction(data, name, getattr(cls, name)) or 0.0 for name in ("train", "validation", "test")}
        if abs(sum(ratios.values()) - 1) > 1e-6:
            raise ExportError("train", f"Split ratios must add up to 1, not {sum(ratios.values()):g}.")
        try:
            seed = int(data.get("seed", 0) or 0)
        except (TypeError, ValueError):
            raise ExportError("seed", f"seed must be a whole number, not {data.get('seed')!r}.") from None
        return cls(**ratios, seed=seed, group_by_job=_flag(data, "group_by_job", False))

    def as_dict(self) -> dict:
        return {"train": self.train, "validation": self.validation, "test": self.test, "seed": self.seed,
                "group_by_job": self.group_by_job}  # fmt: skip


# --- SQL ---------------------------------------------------------------------------------------------------------

#: ``approved_by`` values of a human decision, as an SQL list of fixed constants.
HUMAN_APPROVERS_SQL = "(" + ", ".join(f"'{value}'" for value in HUMAN_APPROVERS) + ")"


@dataclass(frozen=True)
class _Dialect:
    quote: str  # a text as a JSON string ({} is the text)
    jsoncol: str  # a JSON column as JSON text ({} is the column)
    dist: str  # a float from the label distribution: {} the JSON path/key parameter placeholder
    key_param: str  # how a label key is passed to ``dist``
    sha256_hex: str  # sha256 of a text as 64 hex digits (on SQLite, Django registers SHA256)
    bytewise: str  # compare texts byte by byte, whatever the database's collation
    postgres: bool

    def concat(self, pieces: list[str]) -> str:
        """SQL joining texts that are never NULL. PostgreSQL's ``concat`` takes at most 100 arguments."""
        if not self.postgres:
            return "(" + " || ".join(pieces) + ")"
        if len(pieces) > 90:
            return self.concat([self.concat(pieces[i : i + 90]) for i in range(0, len(pieces), 90)])
        return f"concat({', '.join(pieces)})"


_POSTGRES = _Dialect(
    quote="to_json({})",
    jsoncol="{}",
    dist="(c.label_distribution ->> %s)::float8",
    key_param="{}",
    sha256_hex="encode(sha256(convert_to({}, 'UTF8')), 'hex')",
    bytewise=' COLLATE "C"',
    postgres=True,
)
_SQLITE = _Dialect(
    quote="json_quote({})",
    jsoncol="json({})",
    dist="json_extract(c.label_distribution, %s)",
    key_param='$."{}"',
    sha256_hex="SHA256({})",
    bytewise="",
    postgres=False,
)


def _dialect() -> _Dialect:
    return _POSTGRES if connection.vendor == "postgresql" else _SQLITE


# How a value becomes JSON text: a number (NULL is null), a text (quoted by the database), one of known texts (a
# tuple: those are written as constants, anything else is quoted), JSON text as it is, or a nested object (a list of
# fields). Every text and JSON expression below is NOT NULL (the inner query sees to it).
NUMBER, TEXT, JSON = "number", "text", "json"
SENIORITY = ("", *Seniority.values)


def _fields(d: _Dialect, labels: list[str]) -> list[tuple]:
    """(json key, kind, SQL over the derived table ``t``) of every exported field, in file order (split last)."""
    total = " + ".join(f"t.p{i}" for i in range(len(labels)))
    soft = [
        (key, NUMBER, f"CASE WHEN ({total}) > 0 THEN t.p{i} / ({total}) WHEN t.label = '{key}' THEN 1.0 ELSE 0.0 END")
        for i, key in enumerate(labels)  # keys match ^[a-z][a-z0-9_]*$ (PolicyVersion invariant): safe to inline
    ]
    known = tuple(labels)
    return [
        ("pair_id", NUMBER, "t.pair_id"),
        ("member_id", TEXT, "t.member_id"),
        ("job_id", TEXT, "t.job_id"),
        ("member", [("headline", TEXT, "t.member_headline"), ("skills", JSON, d.jsoncol.format("t.member_skills")),
                    ("seniority", SENIORITY, "t.member_seniority"), ("location", TEXT, "t.member_location"),
                    ("summary", TEXT, "t.member_summary")]),
        ("job", [("title", TEXT, "t.job_title"), ("description", TEXT, "t.job_description"),
                 ("required_skills", JSON, d.jsoncol.format("t.job_required_skills")),
                 ("seniority", SENIORITY, "t.job_seniority"), ("location", TEXT, "t.job_location")]),
        ("label", known, "t.label"),
        ("soft_label", soft),
        ("teacher_label", known, "t.teacher_label"),
        ("confidence", NUMBER, "t.confidence"),
        ("rationale", TEXT, "t.rationale"),
        ("rationale_source", ("teacher", "human", ""), "t.rationale_source"),
        ("cited_rules", JSON, "t.cited_rules"),
        ("routing", tuple(Candidate.Routing.values), "t.routing"),
        ("reasons", JSON, "t.reasons"),
        ("approved_by", ("unapproved", *ApprovedBy.values), "t.approved_by"),
        ("reviewers", JSON, "t.reviewers"),
        ("adjudicator", TEXT, "t.adjudicator"),
        ("agreement", NUMBER, "t.agreement"),
        ("gold_label", ("", *known), "t.gold_label"),
        ("run_id", NUMBER, "t.run_id"),
    ]  # fmt: skip


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"  # %%: a % that is not a query parameter


def _value_sql(d: _Dialect, kind, expr: str) -> str:
    if kind == NUMBER:
        return f"COALESCE(CAST({expr} AS TEXT), 'null')"
    if kind == TEXT:
        return d.quote.format(expr)
    if kind == JSON:
        return expr
    # Known texts: comparing with each costs less than quoting (to_json looks up the type on every call).
    known = " ".join(f"WHEN {_sql_text(v)} THEN {_sql_text(json.dumps(v))}" for v in kind)
    return f"CASE {expr} {known} ELSE {d.quote.format(expr)} END"


def _object_parts(d: _Dialect, fields: list) -> list[tuple[bool, str]]:
    """A JSON object's text as (is SQL, text) parts: constant punctuation and keys, and the values' SQL."""
    parts: list[tuple[bool, str]] = [(False, "{")]
    for n, (key, *spec) in enumerate(fields):
        parts.append((False, ("," if n else "") + json.dumps(key) + ":"))
        if len(spec) == 1:  # a nested object
            parts += _object_parts(d, spec[0])
        else:
            parts.append((True, _value_sql(d, *spec)))
    return [*parts, (False, "}")]


def json_object_sql(d: _Dialect, fields: list) -> str:
    """SQL for the JSON text of an object of ``fields`` (see :func:`_fields`); adjacent constants become one literal."""
    pieces, constant = [], ""
    for is_sql, text in _object_parts(d, fields):
        if is_sql:
            pieces += [_sql_text(constant), text] if constant else [text]
            constant = ""
        else:
            constant += text
    return d.concat([*pieces, _sql_text(constant)])


#: a trust check failed / the pair's text holds text aimed at a model (``labeling.models.flagged_q``)
TRUST_FAILED_SQL = "(c.trust_ok IS FALSE OR c.reason_trust_check_failed)"  # NULL: checks never ran, not flagged
#: why candidates of the chosen runs are left out, in the order they are asked (a candidate counts under the first)
LEFT_OUT_REASONS = (
    "not_labeled", "trust_check_failed", "suspected_injection", "pending_review", "human_only", "reasons",
    "min_confidence", "min_agreement", "gold_only", "duplicate_pair",
)  # fmt: skip


def gates(version: PolicyVersion, filters: Filters) -> list[tuple[str, str, list]]:
    """(left-out reason, SQL condition an exported candidate meets, its parameters), in the order of
    :data:`LEFT_OUT_REASONS`. The export's WHERE is all of them; :func:`left_out_query` counts who failed which.
    Flagged candidates (a failed trust check, suspected injection) pass only once humans approved them, unless
    the export asks for ``include_flagged``."""
    human = f"c.approved_by IN {HUMAN_APPROVERS_SQL}"
    out = [("not_labeled", "c.status = 'labeled'", [])]
    if not filters.include_flagged:
        out.append(("trust_check_failed", f"({human} OR NOT {TRUST_FAILED_SQL})", []))
        out.append(("suspected_injection", f"({human} OR NOT c.reason_suspected_injection)", []))
    if filters.approved_only:
        out.append(("pending_review", "c.approved_label <> ''", []))
    if filters.human_only:
        out.append(("human_only", human, []))
    if filters.reasons:
        out.append(("reasons", "(" + " OR ".join(f"c.reason_{r}" for r in filters.reasons) + ")", []))
    if filters.min_confidence is not None:
        out.append(("min_confidence", "c.confidence >= %s", [filters.min_confidence]))
    if filters.min_agreement is not None:
        agreement = (
            f"(CASE WHEN {human} THEN (SELECT CAST(SUM(CASE WHEN r.label = "
            "c.approved_label THEN 1 ELSE 0 END) AS FLOAT) / COUNT(*) FROM labeling_review r "
            "WHERE r.candidate_id = c.id AND r.kind = 'review') ELSE c.vote_share END) >= %s"
        )
        out.append(("min_agreement", agreement, [filters.min_agreement]))
    if filters.gold_only:
        gold = "EXISTS (SELECT 1 FROM labeling_goldlabel g WHERE g.policy_id = %s AND g.pair_id = c.pair_id)"
        out.append(("gold_only", gold, [version.policy_id]))
    return out


@dataclass(frozen=True)
class Query:
    sql: str
    params: list
    columns: int = 0  # how many columns the rows have (what a binary COPY needs to decode them)


def _inner(version: PolicyVersion, run_ids: list[int], filters: Filters, pair_id: int | None = None) -> Query:
    """The selected candidates, one per pair, with every exported column (JSON values as JSON text); with
    ``pair_id`` only that pair's row (if it is selected), read through indexes.

    Per row: the teacher sample that gave the exported label (its rationale and cited rules), else an annotator's
    or adjudicator's note for that label; the reviews come from one grouped join, the gold label from another."""
    d = _dialect()
    labels = version.label_keys
    runs = ", ".join(["%s"] * len(run_ids))
    hard = "CASE WHEN c.approved_label <> '' THEN c.approved_label ELSE c.label END"
    note = (
        f"(SELECT r.note FROM labeling_review r WHERE r.candidate_id = c.id AND r.label = ({hard}) AND r.note <> '' "
        "ORDER BY CASE WHEN r.kind = 'adjudication' THEN 0 ELSE 1 END, r.id LIMIT 1)"
    )
    reasons = " || ".join(f"CASE WHEN c.reason_{r} THEN '\"{r}\",' ELSE '' END" for r in Candidate.REASONS)
    probs = ", ".join(f"COALESCE({d.dist}, 0) AS p{i}" for i in range(len(labels)))
    reviewers = (
        "COALESCE(json_agg(u.username ORDER BY u.username) FILTER (WHERE r.kind = 'review'), '[]'::json)"
        if d is _POSTGRES
        else "json_group_array(u.username) FILTER (WHERE r.kind = 'review')"
    )
    conditions = gates(version, filters)
    where = [f"c.run_id IN ({runs})", *(sql for _, sql, _ in conditions)]
    params: list = [d.key_param.format(key) for key in labels] + list(run_ids)
    params += [p for _, _, gate_params in conditions for p in gate_params]
    if pair_id is not None:
        where.append("c.pair_id = %s")
        params.append(pair_id)
    one_pair = " AND cc.pair_id = %s" if pair_id is not None else ""
    params += list(run_ids) + ([pair_id] if pair_id is not None else []) + [version.policy_id]
    picked = (
        "SELECT id FROM (SELECT c.id, ROW_NUMBER() OVER (PARTITION BY c.pair_id ORDER BY CASE WHEN c.approved_by "
        f"IN {HUMAN_APPROVERS_SQL} THEN 0 ELSE 1 END, c.run_id DESC) AS pick FROM labeling_candidate c "
        f"WHERE {' AND '.join(where)}) ranked WHERE pick = 1"
    )
    sql = f"""
        SELECT p.id AS pair_id, m.external_id AS member_id, j.external_id AS job_id,
          m.headline AS member_headline, m.skills AS member_skills, m.seniority AS member_seniority,
          m.location AS member_location, m.summary AS member_summary,
          j.title AS job_title, j.description AS job_description, j.required_skills AS job_required_skills,
          j.seniority AS job_seniority, j.location AS job_location,
          {hard} AS label, c.label AS teacher_label, {probs}, c.confidence AS confidence,
          COALESCE(s.rationale, {note}, '') AS rationale,
          CASE WHEN s.id IS NOT NULL THEN 'teacher' WHEN {note} IS NOT NULL THEN 'human' ELSE '' END
            AS rationale_source,
          COALESCE({d.jsoncol.format("s.cited_rules")}, '[]') AS cited_rules,
          c.routing AS routing, '[' || rtrim({reasons}, ',') || ']' AS reasons,
          CASE WHEN c.approved_by = '' THEN 'unapproved' ELSE c.approved_by END AS approved_by,
          COALESCE(rv.reviewers, '[]') AS reviewers, COALESCE(rv.adjudicator, '') AS adjudicator,
          CASE WHEN c.approved_by IN {HUMAN_APPROVERS_SQL} AND rv.n > 0 THEN CAST(rv.agree AS FLOAT) / rv.n
               ELSE c.vote_share END AS agreement,
          COALESCE(g.label, '') AS gold_label,
          c.run_id AS run_id
        FROM ({picked}) picked
        JOIN labeling_candidate c ON c.id = picked.id
        JOIN labeling_pair p ON p.id = c.pair_id
        JOIN labeling_member m ON m.id = p.member_id
        JOIN labeling_job j ON j.id = p.job_id
        LEFT JOIN labeling_teachersample s ON s.run_id = c.run_id AND s.pair_id = c.pair_id
          AND s.sample_index = (SELECT MIN(s2.sample_index) FROM labeling_teachersample s2 WHERE s2.run_id = c.run_id
                                AND s2.pair_id = c.pair_id AND s2.label = ({hard}) AND s2.error_kind = '')
        LEFT JOIN (
          SELECT r.candidate_id, {reviewers} AS reviewers,
            MAX(CASE WHEN r.kind = 'adjudication' THEN u.username END) AS adjudicator,
            SUM(CASE WHEN r.kind = 'review' THEN 1 ELSE 0 END) AS n,
            SUM(CASE WHEN r.kind = 'review' AND r.label = cc.approved_label THEN 1 ELSE 0 END) AS agree
          FROM labeling_review r JOIN auth_user u ON u.id = r.reviewer_id
          JOIN labeling_candidate cc ON cc.id = r.candidate_id
          WHERE cc.run_id IN ({runs}){one_pair} GROUP BY r.candidate_id
        ) rv ON rv.candidate_id = c.id
        LEFT JOIN labeling_goldlabel g ON g.policy_id = %s AND g.pair_id = c.pair_id
    """
    return Query(sql, params)


ORDER = "ORDER BY t.member_id, t.job_id"


#: member id → split group key, filled per build when the recipe groups by job (exports.splits.job_groups)
GROUPS_TABLE = "export_split_groups"


def _split_json(d: _Dialect, recipe: SplitRecipe) -> tuple[str, list]:
    """The split as SQL for its JSON text: the first 16 hex digits of sha256("<seed>:<group key>") against the
    cumulative ratios as 16-digit hex strings (fixed-width hex compares like the number). Same answer as
    ``exports.splits.split_of``."""
    key = "COALESCE(gr.group_key, t.member_id)" if recipe.group_by_job else "t.member_id"
    digits = f"substr({d.sha256_hex.format(f'%s || {key}')}, 1, 16){d.bytewise}"
    bounds = [boundary_hex(recipe.train), boundary_hex(recipe.train + recipe.validation)]
    train, validation, test = (_sql_text(json.dumps(name)) for name in recipe.names)
    sql = f"CASE WHEN {digits} < %s THEN {train} WHEN {digits} < %s THEN {validation} ELSE {test} END"
    return sql, [f"{recipe.seed}:", bounds[0], f"{recipe.seed}:", bounds[1]]


def boundary_hex(fraction: float) -> str:
    """A cumulative ratio as the 16-hex-digit number it means; above every digest when it is 1."""
    return "g" * 16 if fraction >= 1 - 1e-12 else f"{int(fraction * 2**64):016x}"


def rows_query(version: PolicyVersion, run_ids: list[int], filters: Filters, recipe: SplitRecipe) -> Query:
    """One column: each row as a complete JSON object, split included. The writers copy it byte for byte."""
    inner = _inner(version, run_ids, filters)
    d = _dialect()
    split, split_params = _split_json(d, recipe)
    row = json_object_sql(d, [*_fields(d, version.label_keys), ("split", JSON, split)])
    groups = f"LEFT JOIN {GROUPS_TABLE} gr ON gr.member_id = t.member_id" if recipe.group_by_job else ""
    sql = f"SELECT {row} FROM ({inner.sql}) t {groups} {ORDER}"
    return Query(sql, split_params + inner.params, columns=1)


def floor_query(version: PolicyVersion, run_ids: list[int], filters: Filters) -> Query:
    """The same rows as plain columns, no JSON building: the benchmark's ``COPY … TO STDOUT`` floor."""
    inner = _inner(version, run_ids, filters)
    return Query(f"SELECT t.* FROM ({inner.sql}) t {ORDER}", inner.params)


def count_query(version: PolicyVersion, run_ids: list[int], filters: Filters) -> Query:
    inner = _inner(version, run_ids, filters)
    return Query(f"SELECT COUNT(*) FROM ({inner.sql}) t", inner.params)


def pair_row_query(version: PolicyVersion, run_ids: list[int], filters: Filters, *, pair_id: int) -> Query:
    """The run whose candidate is the row of ``pair_id`` in this selection (no row: the pair is not in it)."""
    inner = _inner(version, run_ids, filters, pair_id=pair_id)
    return Query(f"SELECT t.run_id FROM ({inner.sql}) t", inner.params, columns=1)


def left_out_query(version: PolicyVersion, run_ids: list[int], filters: Filters) -> Query:
    """(reason, candidates) of the chosen runs' candidates by the first gate they fail (``selected``: none; those
    beyond one per pair are the ``duplicate_pair`` left-outs). ``IS NOT TRUE``: a NULL fails like in a WHERE."""
    conditions = gates(version, filters)
    cases = " ".join(f"WHEN ({sql}) IS NOT TRUE THEN '{reason}'" for reason, sql, _ in conditions)
    params = [p for _, _, gate_params in conditions for p in gate_params] + list(run_ids)
    runs = ", ".join(["%s"] * len(run_ids))
    sql = (
        f"SELECT reason, COUNT(*) FROM (SELECT CASE {cases} ELSE 'selected' END AS reason FROM labeling_candidate c "
        f"WHERE c.run_id IN ({runs})) t GROUP BY reason"
    )
    return Query(sql, params, columns=2)


def left_out(reasons: dict[str, int], rows: int) -> dict[str, int]:
    """Every left-out reason's count (0 when none) and their ``total``, from :func:`left_out_query`'s rows and the
    rows the export wrote: the selected candidates beyond one per pair are duplicates."""
    counts = {reason: reasons.get(reason, 0) for reason in LEFT_OUT_REASONS}
    counts["duplicate_pair"] = reasons.get("selected", 0) - rows
    return {**counts, "total": sum(counts.values())}


def pairs_query(version: PolicyVersion, run_ids: list[int], filters: Filters) -> Query:
    """(member id, job id) of the selected rows: what grouping by job needs."""
    inner = _inner(version, run_ids, filters)
    return Query(f"SELECT t.member_id, t.job_id FROM ({inner.sql}) t", inner.params, columns=2)
