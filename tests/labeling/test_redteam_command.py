"""``manage.py redteam run`` refuses what it cannot start with a clear message and writes nothing; without
``--wait`` it prints the plan and starts the run."""

import io

import pytest
from django.core.management import CommandError, call_command

from labeling.models import RedTeamRun


def _run(*args):
    out = io.StringIO()
    call_command("redteam", "run", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_plan_and_starts_the_run(owner, policy, rt_set, openai_config, fake_openai):
    openai_config()
    printed = _run("--policy", "match", "--version", "draft", "--teacher", "fake", "--user", "olivia")
    run = RedTeamRun.objects.get()
    assert run.on_draft and run.red_team_set == rt_set
    assert printed.splitlines()[0].startswith("Plan: 40 teacher requests")
    assert "  clean: 8 pairs, 8 requests, 0% cached" in printed
    assert f"Red-team run #{run.pk} started" in printed
    assert not fake_openai.chat_requests()  # queued for the workers, nothing asked here


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "nope", "--version", "1"], "No policy 'nope'."),
        (["--policy", "match", "--version", "v1"], "--version is a version number or 'draft', not 'v1'."),
        (["--policy", "match", "--version", "9"], "No version 9 of policy 'match'."),
        (["--policy", "match", "--version", "1", "--set", "999"], "No red-team set #999 of 'match'."),
    ],
)
def test_bad_arguments_are_refused(owner, policy, rt_set, openai_config, args, message):
    openai_config()
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(".", r"\.")):
        _run(*args, "--teacher", "fake", "--user", "olivia")
    assert not RedTeamRun.objects.exists()


def test_only_policy_owners_start_runs(engineer, policy, rt_set, openai_config):
    openai_config()
    with pytest.raises(CommandError, match="Only policy owners can start red-team runs."):
        _run("--policy", "match", "--version", "1", "--teacher", "fake", "--user", "emma")


def test_a_policy_without_a_set_says_how_to_make_one(owner, policy, openai_config):
    openai_config()
    with pytest.raises(CommandError, match="has no red-team set: create one with `redteam create` first"):
        _run("--policy", "match", "--version", "1", "--teacher", "fake", "--user", "olivia")
