"""Deterministic, leakage-safe splits.

A row's split is decided by its group, never by the row: the group is the member (so no member appears in two
splits), or with ``group_by_job`` the connected component of members and jobs linked by the exported pairs (so no
job does either). The group's share — the first 8 bytes of sha256("<seed>:<group key>") as a fraction — is compared
with the cumulative ratios. Nothing depends on database ids or row order: the same recipe on the same data gives
the same splits on any machine.
"""

import hashlib
from collections.abc import Iterable

from .selection import SplitRecipe


def share(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def job_groups(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """member id → group key: the smallest member id of its component in the member–job graph (union–find)."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for member, job in pairs:
        a, b = find("m:" + member), find("j:" + job)
        if a != b:
            # the root is the member node with the smallest id in the component (every component has a member)
            keep, drop = (a, b) if (a[0] != "m", a[2:]) < (b[0] != "m", b[2:]) else (b, a)
            parent[drop] = keep
    return {node[2:]: find(node)[2:] for node in list(parent) if node.startswith("m:")}


class Splitter:
    """``splitter(member_id)`` → "train" | "validation" | "test". Rows arrive ordered by member, so only the last
    member's answer is remembered (constant memory, one hash per member)."""

    def __init__(self, recipe: SplitRecipe, groups: dict[str, str] | None = None):
        self.recipe = recipe
        self.groups = groups
        self._bounds = (recipe.train, recipe.train + recipe.validation)
        self._last: tuple[str, str] = ("", "")

    def __call__(self, member_id: str) -> str:
        if self._last[0] == member_id and member_id:
            return self._last[1]
        key = self.groups.get(member_id, member_id) if self.groups is not None else member_id
        value = share(self.recipe.seed, key)
        split = "train" if value < self._bounds[0] else "validation" if value < self._bounds[1] else "test"
        self._last = (member_id, split)
        return split
