"""How a draft's labels map from the previous version's: the pure part (no ORM).

A version's ``label_mapping`` is ``{old key: [new key, …]}`` against the version it is based on: one new key is a
rename (or, when several old keys name the same new key, a merge), several new keys a split (the old label's
possible new labels; which one applies must be decided per item). An old key kept in the new label set and not
named maps to itself; an old key removed and not named maps to nothing.
"""

from dataclasses import dataclass

from .models import LABEL_KEY_RE, ContentError

SECTION = "label_mapping"
RENAME, MERGE, SPLIT, KEPT = "rename", "merge", "split", "kept"


@dataclass(frozen=True)
class MappingRow:
    old: str
    new: tuple[str, ...]
    kind: str  # rename | merge | split | kept (an explicit old → same key)


def normalize_mapping(mapping) -> dict[str, list[str]]:
    """Strip keys; drop empty new keys and repeats (keeping order). Anything not a mapping of lists is kept as it
    is for ``validate_mapping`` to refuse."""
    if not isinstance(mapping, dict):
        return mapping
    result = {}
    for old, new in mapping.items():
        if isinstance(new, str):
            new = [new]
        if isinstance(new, list | tuple):
            new = list(dict.fromkeys(str(key).strip() for key in new if str(key).strip()))
        result[str(old).strip()] = new
    return result


def validate_mapping(
    mapping, *, old_keys: list[str], new_keys: list[str], used_keys: set[str] = frozenset()
) -> list[ContentError]:
    """Per-entry errors (``field`` is the old key): unknown old key, unknown or missing new keys, and an old
    label the new set drops without a mapping while ``used_keys`` (the gold set's labels) still use it."""
    if not isinstance(mapping, dict) or not all(isinstance(v, list) for v in mapping.values()):
        return [ContentError(SECTION, None, None, "The label mapping must be {old key: [new key, …]}.")]
    errors: list[ContentError] = []
    if mapping and not old_keys:
        return [ContentError(SECTION, None, None, "A first version has no earlier labels to map from.")]
    for index, (old, new) in enumerate(mapping.items()):
        if old not in old_keys:
            errors.append(ContentError(SECTION, index, old, f"{old!r} is not a label of the previous version "
                                       f"({', '.join(old_keys)}).",))  # fmt: skip
            continue
        if not new:
            errors.append(ContentError(SECTION, index, old, f"{old} maps to no new label: name one (rename or "
                                       "merge) or several (split)."))  # fmt: skip
        for key in new:
            if not isinstance(key, str) or not LABEL_KEY_RE.match(key) or key not in new_keys:
                errors.append(ContentError(SECTION, index, old, f"{old} → {key!r}: {key!r} is not a label of "
                                           f"this draft ({', '.join(new_keys)}).",))  # fmt: skip
    for old in old_keys:
        if old not in new_keys and old not in mapping and old in used_keys:
            errors.append(ContentError(SECTION, None, old, f"{old} is removed but gold labels use it: map it to "
                                       "the label(s) it becomes."))  # fmt: skip
    return errors


def effective_mapping(mapping: dict, *, old_keys: list[str], new_keys: list[str]) -> dict[str, list[str]]:
    """Every old key's new keys: the declared ones, else itself when it is kept, else none."""
    return {old: list(mapping.get(old) or ([old] if old in new_keys else [])) for old in old_keys}


def mapping_rows(mapping: dict, *, old_keys=()) -> list[MappingRow]:
    """The declared entries with their kind, in declaration order (an old key kept without an entry counts as
    mapping to itself, so ``{a: [b]}`` with ``b`` kept is a merge)."""
    targets: dict[str, int] = {key: 1 for key in old_keys if key not in mapping}
    for new in mapping.values():  # a new key several old labels lead to (one of them perhaps by a split) merges
        for key in new:
            targets[key] = targets.get(key, 0) + 1
    rows = []
    for old, new in mapping.items():
        if len(new) > 1:
            kind = SPLIT
        elif new == [old]:
            kind = KEPT
        else:
            kind = MERGE if targets.get(new[0], 0) > 1 else RENAME
        rows.append(MappingRow(old, tuple(new), kind))
    return rows


def split_keys(mapping: dict) -> dict[str, list[str]]:
    """{old key: its possible new keys} for the split entries."""
    return {old: list(new) for old, new in mapping.items() if len(new) > 1}


def translate(label: str, translation: dict[str, list[str]]) -> str | None:
    """``label`` in the gold set's keys: its one new key, None when it was split (or dropped), itself when the
    translation does not know it."""
    if label not in translation:
        return label
    keys = translation[label]
    return keys[0] if len(keys) == 1 else None
