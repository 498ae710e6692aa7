"""Queues per kind of work: teacher chunks, batch polls, imports, exports and the watchdog's sweep each go to their
own Celery queue, so a pool of workers per queue keeps a long run from delaying an export or an import."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from exports.models import DatasetExport
from exports.services import export_create
from labeling.models import ImportBatch, LabelingRun, TeacherConfig
from labeling.services import import_upload_enqueue, labeling_run_cancel, labeling_run_create
from policyhub import celery_app
from policyhub.queueing import _task
from tests.celery_worker import ROOT, Worker, purge_queue, worker_database_url
from tests.fakes.openai_server import FakeOpenAI

ROUTED = {
    "labeling.tasks.labeling_run_chunk": "teacher",
    "labeling.tasks.labeling_run_batch_submit": "batch",
    "labeling.tasks.labeling_run_batch_poll": "batch",
    "labeling.tasks.import_batch_process": "imports",
    "exports.tasks.export_build_task": "exports",
    "policyhub.tasks.watchdog_sweep": "housekeeping",
    "policyhub.tasks.policy_version_freeze_prompt": "celery",
}


def test_each_kind_of_work_is_sent_to_its_own_queue(settings):
    routes = {name: celery_app.amqp.router.route({}, _task(name).name, (), {})["queue"].name for name in ROUTED}
    assert routes == ROUTED
    assert set(settings.WORK_QUEUES) == set(ROUTED.values())
    assert settings.CELERY_BEAT_SCHEDULE["watchdog-sweep"]["options"]["queue"] == "housekeeping"


def test_the_worker_bin_run_starts_consumes_every_queue(settings):
    command = next(
        line for line in (ROOT / "bin" / "run").read_text().splitlines() if "celery -A policyhub worker" in line
    )
    queues = re.search(r"-Q (\S+)", command).group(1).split(",")
    assert sorted(queues) == sorted(settings.WORK_QUEUES)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_export_and_an_import_finish_while_a_long_run_holds_the_teacher_queue(
    export_run, engineer, settings, tmp_path
):
    """A worker for the teacher queue is busy with a slow teacher (60 pairs at 1 s, one at a time); the worker of
    the imports and exports queues builds an export and imports a file meanwhile."""
    settings.MEDIA_ROOT = tmp_path / "media"
    env = {"OPENAI_API_KEY": "test", "POLICYHUB_EXPORTS_DIR": str(settings.EXPORTS_ROOT),
           "MEDIA_ROOT": str(settings.MEDIA_ROOT)}  # fmt: skip
    purge_queue()
    with FakeOpenAI(latency=1.0) as server:
        config = TeacherConfig.objects.create(
            name="slow", model="fake-teacher", base_url=server.base_url, samples_per_pair=1, concurrency=1,
            temperature=0, request_timeout=10,
        )  # fmt: skip
        teacher = Worker(tmp_path, database_url=worker_database_url(), env=env, queues=("teacher",))
        others = Worker(tmp_path, database_url=worker_database_url(), env=env, queues=("imports", "exports"))
        run = None
        try:
            teacher.start()
            others.start()
            version = export_run.policy_version
            run = labeling_run_create(version=version, config=config, selection={"all": True}, chunk_size=100)
            teacher.wait_for(lambda: server.requests, "the teacher worker to start the run")
            export, _ = export_create(user=engineer, version=version, runs=[export_run])
            upload = SimpleUploadedFile(
                "members.csv", b"member_id,headline\nq1,Queued member\n", content_type="text/csv"
            )
            batch = import_upload_enqueue(kind="members", upload=upload, user=engineer).batch
            others.wait_for(
                lambda: (
                    DatasetExport.objects.get(pk=export.pk).status == "ready"
                    and ImportBatch.objects.get(pk=batch.pk).status == "succeeded"
                ),
                "the export and the import to finish",
            )
            during = LabelingRun.objects.get(pk=run.pk)
            assert during.status == "running" and during.samples_done < during.samples_total  # still labelling
        finally:
            if run is not None:
                labeling_run_cancel(run=run)  # the chunk starts no new request: the teacher worker stops soon
            teacher.stop()
            others.stop()
    received = "] received"  # a task a worker took: "Task exports.tasks.export_build_task[…] received"
    assert "labeling_run_chunk[" in teacher.log() and "labeling_run_chunk[" not in others.log()
    assert "export_build_task[" in others.log() and "import_batch_process[" in others.log()
    assert "export_build_task[" not in teacher.log() and "import_batch_process[" not in teacher.log()
    assert received in teacher.log() and received in others.log()
    assert (settings.EXPORTS_ROOT / str(export.pk) / DatasetExport.objects.get(pk=export.pk).archive_name).is_file()
