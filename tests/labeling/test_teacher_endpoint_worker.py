"""A real Celery worker whose settings refuse a base URL the web process accepted: the run fails with the reason,
and the teacher's server never hears from it."""

import pytest

from labeling.models import LabelingRun, TeacherConfig
from labeling.services import import_file, labeling_run_create, teacher_config_save
from tests.celery_worker import Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_worker_that_may_not_reach_the_base_url_fails_the_run_and_sends_nothing(policy, engineer, tmp_path):
    import io

    for kind, text in [
        ("members", "member_id,headline\nm1,Engineer\nm2,Nurse\n"),
        ("jobs", "job_id,title,description\nj1,Engineer,Build\n"),
        ("pairs", "member_id,job_id\nm1,j1\nm2,j1\n"),
    ]:
        assert import_file(kind=kind, stream=io.BytesIO(text.encode()), name=f"{kind}.csv").ok
    purge_queue()
    # This worker's operator allows no private host: the fake server on 127.0.0.1 is out of bounds for it.
    worker = Worker(
        tmp_path,
        database_url=worker_database_url(),
        env={"OPENAI_API_KEY": "test", "TEACHER_ALLOWED_PRIVATE_HOSTS": ""},
    )
    with FakeOpenAI() as server:
        config = teacher_config_save(  # accepted by the web process, whose settings allow 127.0.0.1
            config=TeacherConfig(name="fake", model="fake-teacher", base_url=server.base_url, samples_per_pair=1),
            user=engineer,
        )
        try:
            worker.start()
            run = labeling_run_create(version=policy.versions.get(number=1), config=config, selection={"all": True})
            worker.wait_for(lambda: LabelingRun.objects.get(pk=run.pk).status == "failed", "the run to fail")
        finally:
            worker.stop()
        assert server.received == []
    run.refresh_from_db()
    assert run.error == (
        "The base URL's host 127.0.0.1 is a private, loopback or link-local address; "
        "the workers may reach it only when TEACHER_ALLOWED_PRIVATE_HOSTS allows it."
    )
    assert run.samples_done == 0
