"""Differences between two policy versions.

The body is compared line by line with :mod:`difflib` and laid out side by side; labels are matched by key and
rules by their stable ID, and each is reported as added, removed or changed (with the fields that changed).
"""

import difflib
from dataclasses import dataclass, field

from .labelmap import MappingRow, mapping_rows
from .models import PolicyVersion


@dataclass(frozen=True)
class BodyRow:
    """One row of the side-by-side body diff. ``kind`` is equal, replace, delete or insert."""

    kind: str
    old_number: int | None
    old_text: str
    new_number: int | None
    new_text: str


@dataclass(frozen=True)
class ItemChange:
    key: str
    change: str  # added | removed | changed | unchanged
    old: dict | None
    new: dict | None
    changed_fields: tuple[str, ...] = ()


@dataclass
class VersionDiff:
    old: PolicyVersion
    new: PolicyVersion
    body_rows: list[BodyRow] = field(default_factory=list)
    labels: list[ItemChange] = field(default_factory=list)
    rules: list[ItemChange] = field(default_factory=list)
    #: The new version's label mapping when it maps from the old one (rename, merge, split rows).
    label_mapping: list[MappingRow] = field(default_factory=list)

    @property
    def changed_labels(self) -> list[ItemChange]:
        return [item for item in self.labels if item.change != "unchanged"]

    @property
    def changed_rules(self) -> list[ItemChange]:
        return [item for item in self.rules if item.change != "unchanged"]

    @property
    def body_changed(self) -> bool:
        return any(row.kind != "equal" for row in self.body_rows)

    def summary(self) -> dict[str, dict[str, int]]:
        def count(items: list[ItemChange]) -> dict[str, int]:
            return {kind: sum(1 for i in items if i.change == kind) for kind in ("added", "removed", "changed")}

        return {"labels": count(self.labels), "rules": count(self.rules)}


def diff_body(old: str, new: str) -> list[BodyRow]:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    rows: list[BodyRow] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        span = max(i2 - i1, j2 - j1)
        for offset in range(span):
            i, j = i1 + offset, j1 + offset
            has_old, has_new = i < i2, j < j2
            rows.append(
                BodyRow(
                    kind=tag if (has_old and has_new) or tag == "equal" else ("delete" if has_old else "insert"),
                    old_number=i + 1 if has_old else None,
                    old_text=old_lines[i] if has_old else "",
                    new_number=j + 1 if has_new else None,
                    new_text=new_lines[j] if has_new else "",
                )
            )
    return rows


def diff_items(old_items: list[dict], new_items: list[dict], key: str) -> list[ItemChange]:
    """Match items by ``key``; keep the new version's order, then list removed items in their old order."""
    old_by_key = {item[key]: item for item in old_items}
    new_keys = {item[key] for item in new_items}
    changes: list[ItemChange] = []
    for item in new_items:
        before = old_by_key.get(item[key])
        if before is None:
            changes.append(ItemChange(item[key], "added", None, item))
            continue
        fields = tuple(sorted(f for f in set(before) | set(item) if f != key and before.get(f) != item.get(f)))
        changes.append(ItemChange(item[key], "changed" if fields else "unchanged", before, item, fields))
    changes += [ItemChange(item[key], "removed", item, None) for item in old_items if item[key] not in new_keys]
    return changes


def version_diff(old: PolicyVersion, new: PolicyVersion) -> VersionDiff:
    return VersionDiff(
        old=old,
        new=new,
        body_rows=diff_body(old.body, new.body),
        labels=diff_items(old.labels, new.labels, "key"),
        rules=diff_items(old.rules, new.rules, "id"),
        label_mapping=mapping_rows(new.label_mapping, old_keys=old.label_keys)
        if new.label_mapping and new.based_on_id is not None and new.based_on_id == old.pk
        else [],
    )
