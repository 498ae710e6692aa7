"""``manage.py gates check``: the draft's gate check on the command line, exit status 1 when blocked."""

import json

import pytest
from django.core.management import CommandError, call_command

from .gates_helpers import set_gates


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("gates", *args, stdout=out)
    return out.getvalue()


def test_a_failing_gate_prints_its_result_and_exits_non_zero(previewed, gated_draft, policy, owner):
    preview = previewed(bad=True)
    set_gates(policy, owner, min_gold_accuracy=0.8)

    with pytest.raises(CommandError, match="Publishing v2 would be blocked: Gold accuracy: 0.250 \\(4 gold pairs\\)"):
        run("check", "--policy", "match", "--user", "olivia")
    with pytest.raises(CommandError):
        run("check", "--policy", "match", "--user", "olivia", "--json")

    policy.quality_gates.min_gold_accuracy = 0.2
    policy.quality_gates.save()
    text = run("check", "--policy", "match", "--user", "olivia")
    assert f"match v2 (revision 2), preview #{preview.pk}:" in text
    assert "passed       Gold accuracy: 0.250 (4 gold pairs) ≥ 0.200" in text and "Every gate passes." in text
    data = json.loads(run("check", "--policy", "match", "--user", "olivia", "--json"))
    assert (data["passed"], data["preview"], data["results"][0]["figure"]) == (True, preview.pk, 0.25)


def test_without_gates_the_check_passes_and_refusals_are_clear(policy, owner, annotator):
    assert "no quality gates" in run("check", "--policy", "match", "--user", "olivia")
    with pytest.raises(CommandError, match="arjun is not a policy owner"):
        run("check", "--policy", "match", "--user", "arjun")
    with pytest.raises(CommandError, match="No policy 'nosuch'"):
        run("check", "--policy", "nosuch", "--user", "olivia")
    set_gates(policy, owner, min_gold_accuracy=0.5)
    with pytest.raises(CommandError, match="Draft v2 has not been previewed on the gold set"):
        run("check", "--policy", "match", "--user", "olivia")
