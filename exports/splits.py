"""Deterministic, leakage-safe splits.

A row's split is decided by its group, never by the row: the group is the member (so no member appears in two
splits), or with ``group_by_job`` the connected component of members and jobs linked by the exported pairs (so no
job does either). The group's share — the first 8 bytes of sha256("<seed>:<group key>") as a fraction — is compared
with the cumulative ratios. The database computes it while it builds each row (``exports.selection``);
this module holds the reference in Python and the member–job grouping. Nothing depends on database ids or row
order: the same recipe on the same data gives the same splits on any machine.
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


def split_of(recipe: SplitRecipe, key: str) -> str:
    """The split of a group key, in Python: the reference for the SQL in ``exports.selection`` (tested equal)."""
    value = share(recipe.seed, key)
    if value < recipe.train:
        return "train"
    return "validation" if value < recipe.train + recipe.validation else "test"
