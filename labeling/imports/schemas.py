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


def _identifier(value) -> str:
    text = _text(100)(value)
    if any(ch.isspace() for ch in text):
        raise FieldError("must not contain spaces")
    return text


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
            Column("member_id", _identifier, required=True),
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
            Column("job_id", _identifier, required=True),
            Column("title", _text(300), required=True),
            Column("description", _text(50_000), required=True),
            Column("required_skills", _skill_list),
            Column("seniority", _seniority),
            Column("location", _text(200)),
        ),
    ),
    "pairs": ImportSchema(
        "pairs",
        (Column("member_id", _identifier, required=True), Column("job_id", _identifier, required=True)),
    ),
}
