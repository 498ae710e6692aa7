"""``labels.jsonl``: one JSON object per pair, built whole by the database (``exports.selection.rows_query``).

Nothing is parsed or re-encoded in Python: the rows arrive as bytes and are written as they come.
"""

from collections.abc import Callable, Iterable
from pathlib import Path

PROGRESS_EVERY = 10_000


def write(chunks: Iterable[bytes], path: Path, *, on_progress: Callable[[int], None] = lambda n: None) -> int:
    """``chunks``: the file's bytes, whole lines or not (e.g. COPY blocks). Returns the number of lines."""
    lines, reported = 0, 0
    with open(path, "wb", buffering=1 << 20) as out:
        for chunk in chunks:
            out.write(chunk)
            lines += chunk.count(b"\n")
            if lines - reported >= PROGRESS_EVERY:
                on_progress(reported := lines)
    on_progress(lines)
    return lines
