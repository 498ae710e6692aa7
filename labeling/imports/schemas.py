"""What each import kind accepts: its columns, which are required, and how a raw value is cleaned.

CSV files have a header row naming the columns; JSONL files hold one JSON object per line with the same keys.
List fields (skills) are JSON lists in JSONL, or ``;``-separated text in either format.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from ..models import Seniority

SENIORITIES = frozenset(Seniority.values)
MAX_LIST_ITEMS = 200


class FieldError(ValueError):
    """A value that cannot be accepted; the message is the reason shown to the user."""


def _text(max_length: int) -> Callable[[object], str]:
    def clean(value) -> str:
        if value is None:
            return ""
        if isinstance(value, (dict, list, bool)):
            raise FieldError("must be text")
        text = str(value).strip()
        if len(text) > max_length:
            raise FieldError(f"is {len(text)} characters long; at most {max_length}")
        return text

    return clean


_text_100 = _text(100)


def _identifier(value) -> str:
    text = _text_100(value)
    if len(text.split()) > 1:  # the text is stripped: more than one part means whitespace inside (str.isspace)
        raise FieldError("must not contain spaces")
    return text


def _identifier_fast(value: str) -> str:
    """:func:`_identifier` for ASCII text, with a shortcut for the usual id (printable, so no whitespace)."""
    if value.isprintable() and " " not in value and len(value) <= 100:
        return value
    return _identifier(value)


def _seniority(value) -> str:
    text = _text(20)(value).lower()
    if text and text not in SENIORITIES:
        raise FieldError(f"{text!r} is not one of {', '.join(sorted(SENIORITIES))}")
    return text


def _skill_list(value) -> str:
    """A list of skills, returned as the JSON text stored in the database."""
    if value is None or value == "":
        items: list = []
    elif isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = value.split(";")
    else:
        raise FieldError("must be a list of skills or ';'-separated text")
    skills = []
    for item in items:
        if not isinstance(item, str):
            raise FieldError("every skill must be text")
        skill = item.strip()
        if len(skill) > 100:
            raise FieldError("a skill is longer than 100 characters")
        if skill:
            skills.append(skill)
    if len(skills) > MAX_LIST_ITEMS:
        raise FieldError(f"has {len(skills)} skills; at most {MAX_LIST_ITEMS}")
    return json.dumps(skills, ensure_ascii=False)


@dataclass(frozen=True)
class Column:
    name: str
    clean: Callable[[object], str]
    required: bool = False
    fast: Callable[[str], str] | None = None  # the same cleaning for ASCII text without NUL, quicker


@dataclass(frozen=True)
class ImportSchema:
    kind: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)


SCHEMAS = {
    "members": ImportSchema(
        "members",
        (
            Column("member_id", _identifier, required=True, fast=_identifier_fast),
            Column("headline", _text(300), required=True),
            Column("skills", _skill_list),
            Column("seniority", _seniority),
            Column("location", _text(200)),
            Column("summary", _text(20_000)),
        ),
    ),
    "jobs": ImportSchema(
        "jobs",
        (
            Column("job_id", _identifier, required=True, fast=_identifier_fast),
            Column("title", _text(300), required=True),
            Column("description", _text(50_000), required=True),
            Column("required_skills", _skill_list),
            Column("seniority", _seniority),
            Column("location", _text(200)),
        ),
    ),
    "pairs": ImportSchema(
        "pairs",
        (
            Column("member_id", _identifier, required=True, fast=_identifier_fast),
            Column("job_id", _identifier, required=True, fast=_identifier_fast),
        ),
    ),
}


# --- a student's predictions (labeling.services.students) -----------------------------------------------------
def _pair_id(value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, (bool, dict, list)):
        raise FieldError("must be a whole number (a pair id)")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1 or len(text) > 18:
        raise FieldError(f"{text!r} is not a pair id (a whole number from 1)")
    return int(text)


def _number(value, what: str) -> float:
    if isinstance(value, (bool, dict, list)):
        raise FieldError(f"{what} must be a number between 0 and 1")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise FieldError(f"{value!r} is not a number between 0 and 1") from None
    if not 0 <= number <= 1:  # NaN fails too
        raise FieldError(f"{value!r} is not a probability between 0 and 1")
    return number


def _probability(value) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _number(value, "a probability")


def _probability_object(value) -> dict | None:
    """``{label: p}`` as an object (JSONL, a Parquet struct or map) or its JSON text (CSV)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise FieldError('must be an object of probabilities, e.g. {"strong_match": 0.8, ...}') from None
    if isinstance(value, list) and all(isinstance(i, (list, tuple)) and len(i) == 2 for i in value):
        value = dict(value)  # a Parquet map reads as [(key, value), ...]
    if not isinstance(value, dict):
        raise FieldError('must be an object of probabilities, e.g. {"strong_match": 0.8, ...}')
    probs = {}
    for key, p in value.items():
        if p is None:  # a Parquet struct has every label's field
            continue
        try:
            probs[str(key)] = _number(p, f"the probability of {key!r}")
        except FieldError as error:
            raise FieldError(f"{key}: {error}") from None
    return probs


def _rule_list(value) -> list[str]:
    if value is None or value == "":
        return []
    items = value.split(";") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise FieldError("must be a list of rule ids or ';'-separated text")
    rules = [item.strip() for item in items if item.strip()]
    if len(rules) > MAX_LIST_ITEMS or any(len(rule) > 20 for rule in rules):
        raise FieldError("is not a list of rule ids (at most 200, each like R3)")
    return rules


def prediction_schema(label_keys: list[str]) -> ImportSchema:
    """A student's predictions under a version with ``label_keys``: the pair (``pair_id``, or ``member_id`` and
    ``job_id`` as in the pairs import), the ``label``, optional probabilities (``p_<label>`` columns, or a ``probs``
    object) and optional ``cited_rules``. Which of the pair columns a row needs is checked by the service."""
    return ImportSchema(
        "student_predictions",
        (
            Column("pair_id", _pair_id),
            Column("member_id", _identifier),
            Column("job_id", _identifier),
            Column("label", _text(64), required=True),
            Column("probs", _probability_object),
            *(Column(f"p_{key}", _probability) for key in label_keys),
            Column("cited_rules", _rule_list),
        ),
    )


# --- a red-team set's custom variants (labeling.services.redteam) ---------------------------------------------
def _object(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError("must be a JSON object")
    return value


#: One line of a custom red-team upload: the variant's ``member`` and ``job`` facts (objects with the fields of
#: the members and jobs imports), ``expected_label`` or ``must_match`` (``{"member_id": …, "job_id": …}``), and
#: optional ``expected_flag``, ``name`` and ``note``. Which combination a line needs is checked by the service.
CUSTOM_VARIANT_SCHEMA = ImportSchema(
    "redteam_custom",
    (
        Column("member", _object, required=True),
        Column("job", _object, required=True),
        Column("expected_label", _text(64)),
        Column("must_match", _object),
        Column("expected_flag", _text(24)),
        Column("name", _text(80)),
        Column("note", _text(2000)),
    ),
)
