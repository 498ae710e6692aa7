import pytest
from django.core.management import call_command

from labeling.models import Candidate, ImportBatch, Pair, TeacherConfig
from labeling.services import labeling_run_chunk_process, labeling_run_create
from policyhub.models import Policy


@pytest.fixture
def seeded(db, settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_the_demo_has_pairs_to_label_and_the_heuristic_baseline(seeded):
    assert Pair.objects.count() == 24
    assert list(TeacherConfig.objects.values_list("name", "provider")) == [("heuristic-baseline", "heuristic")]
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Pair.objects.count() == 24 and ImportBatch.objects.count() == 3


def test_a_demo_run_with_the_baseline_labels_every_pair_sensibly(seeded):
    version = Policy.objects.get(slug="member-job-match").versions.get(number=1)
    run = labeling_run_create(
        version=version, config=TeacherConfig.objects.get(), selection={"all": True}, chunk_size=100
    )
    labeling_run_chunk_process(run_id=run.pk, chunk_index=0)
    labels = {(c.pair.member.external_id, c.pair.job.external_id): c.label for c in Candidate.objects.filter(run=run)}
    assert len(labels) == 24
    assert labels[("m-ana", "j-data")] == "strong_match"
    assert labels[("m-chloe", "j-nurse")] == "strong_match"
    assert labels[("m-eva", "j-ml")] == "no_match"


def test_with_an_api_key_the_demo_also_offers_an_openai_teacher(db, settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert TeacherConfig.objects.get(name="openai-default").provider == "openai"
