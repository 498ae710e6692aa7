"""``labels.jsonl``: one JSON object per pair, as the database built it, plus its split.

The object comes from ``exports.selection.rows_query``; the only thing added here is the ``split`` key, by text:
the row is never parsed or re-encoded in Python.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROGRESS_EVERY = 10_000


@dataclass
class Tally:
    rows: int = 0
    by_split_label: Counter = field(default_factory=Counter)  # (split, label) → rows
    approved_by: Counter = field(default_factory=Counter)  # teacher | reviewers | adjudicator | unapproved → rows

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (split, label), n in sorted(self.by_split_label.items()):
            out.setdefault(split, {})[label] = n
        return out


def write(
    rows: Iterable[tuple[str, str, str, str]],
    path: Path,
    *,
    splitter: Callable[[str], str],
    on_progress: Callable[[int], None] = lambda n: None,
) -> Tally:
    """``rows``: (member id, label, approved by, JSON object text)."""
    tally = Tally()
    counts, approved = tally.by_split_label, tally.approved_by
    with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
        write_line = out.write
        for n, (member_id, label, approved_by, obj) in enumerate(rows, start=1):
            split = splitter(member_id)
            counts[split, label] += 1
            approved[approved_by] += 1
            write_line(f'{obj[:-1]}, "split" : "{split}"}}\n')
            if n % PROGRESS_EVERY == 0:
                on_progress(n)
        tally.rows = sum(counts.values())
    on_progress(tally.rows)
    return tally
