"""Shared by the red-team run tests: a red-team run processed in this process (fixtures ``rt_pairs`` and
``rt_set`` are in ``conftest.py``)."""

from labeling.models import RunChunk
from labeling.services import labeling_run_chunk_process
from labeling.services.redteam import red_team_run_start


def process_all(red_team_run):
    """Every pending chunk of every part, in this process, as the workers would (alternating does not matter)."""
    for part in red_team_run.runs.order_by("id"):
        for chunk in RunChunk.objects.filter(run=part, status="pending").order_by("index"):
            labeling_run_chunk_process(run_id=part.pk, chunk_index=chunk.index)
    return red_team_run


def start_and_process(owner, red_team_set, version, config, **kwargs):
    return process_all(red_team_run_start(user=owner, red_team_set=red_team_set, version=version, config=config,
                                          **kwargs))  # fmt: skip
