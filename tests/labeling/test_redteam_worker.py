"""``manage.py redteam run --wait`` against real Celery workers: it prints the plan, the workers label the clean
originals and every category's variants (a biased teacher behind the real openai client), and it prints the
report when the run ends; a run the workers cannot do fails, and the command exits non-zero with the reason."""

import io
import sys

import pytest
from django.core.management import CommandError, call_command

from labeling.models import LabelingRun, RedTeamRun
from labeling.selectors.redteam_report import latest_red_team_run, red_team_gate_figures
from labeling.services import quality_gates_update
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import BiasedResponder, FakeOpenAI

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _run_command(*extra, out=None):
    out = out or io.StringIO()
    call_command("redteam", "run", "--policy", "match", "--version", "1", "--teacher", "fake", "--user", "olivia",
                 "--wait", "--poll", "0.3", *extra, stdout=out)  # fmt: skip
    return out.getvalue()


def test_a_red_team_run_completes_on_real_workers_prints_its_report_and_fails_the_flip_gate(
    owner, policy, rt_set, make_config, tmp_path, monkeypatch
):
    quality_gates_update(policy=policy, user=owner, min_gold_accuracy=None, max_rule_accuracy_drop=None,
                         max_flip_rate=0.05, max_asr_irrelevant_noise=0.05)  # fmt: skip
    monkeypatch.setenv("OPENAI_API_KEY", "test")  # the command checks the config before queueing
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": "test"})
    with FakeOpenAI(latency=0.01) as server:
        server.responder = BiasedResponder()
        config = make_config(base_url=server.base_url, request_timeout=10)
        try:
            worker.start()
            out = io.StringIO()
            with pytest.raises(CommandError, match="fails a quality gate") as raised:
                _run_command(out=out)
        finally:
            worker.stop()
            sys.stdout.write(worker.log())
    printed = out.getvalue()
    assert raised.value.returncode == 2  # a gate failed (a failed run is 1)
    assert "Gate Counterfactual flip rate: failed (blocks), 1.000" in printed
    assert "Gate Attack success rate: irrelevant noise: passed" in printed
    run = RedTeamRun.objects.get()
    assert run.status == "succeeded" and LabelingRun.objects.filter(red_team_run=run, status="succeeded").count() == 5
    assert printed.startswith("Plan: 40 teacher requests")
    assert f"Red-team run #{run.pk}: succeeded, 32 variants (0 undecided)" in printed
    assert "protected_attribute: attack success 8/8 (100%)" in printed
    assert "irrelevant_noise: attack success 0/8 (0%)" in printed
    assert "Counterfactual flips: 8/8" in printed
    assert len(server.chat_requests()) == 40
    assert latest_red_team_run(policy.versions.get(number=1), config) == run
    assert red_team_gate_figures(run)["flip_rate"] == 1.0


def test_the_command_exits_non_zero_when_the_run_fails(owner, policy, rt_set, make_config, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    purge_queue()
    worker = Worker(tmp_path, database_url=worker_database_url(), env={"OPENAI_API_KEY": ""})  # not on the workers
    with FakeOpenAI() as server:
        make_config(base_url=server.base_url, request_timeout=10)
        try:
            worker.start()
            with pytest.raises(CommandError, match="failed: clean: .*not configured on the workers") as raised:
                _run_command()
        finally:
            worker.stop()
    assert raised.value.returncode == 1
    assert RedTeamRun.objects.get().status == "failed"
    assert not server.chat_requests()
