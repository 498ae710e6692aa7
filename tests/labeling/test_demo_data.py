from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command

from exports.models import DatasetExport
from exports.services import export_dir, export_verify
from labeling.models import (
    ApprovedBy,
    Candidate,
    GoldLabel,
    ImportBatch,
    LabelingRun,
    Pair,
    PolicyFeedback,
    QualityGates,
    RedTeamCategory,
    RedTeamRun,
    Review,
    ReviewState,
    RunChunk,
    StudentEvaluation,
    TeacherConfig,
)
from labeling.selectors.feedback import feedback_list
from labeling.selectors.redteam_report import red_team_report
from labeling.selectors.reviews import adjudication_queue, review_queue_count
from labeling.selectors.students import student_report
from labeling.services import (
    draft_preview_start,
    gold_remove,
    labeling_run_chunk_process,
    labeling_run_create,
    review_claim_next,
)
from labeling.services.gates import publish_gate_check
from policyhub import demo
from policyhub import services as policy_services
from policyhub.models import Policy, PolicyVersion


@pytest.fixture
def seeded(db, settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_the_demo_has_pairs_to_label_and_the_heuristic_baseline(seeded):
    assert Pair.objects.count() == 24
    assert list(TeacherConfig.objects.values_list("name", "provider")) == [("heuristic-baseline", "heuristic")]
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Pair.objects.count() == 24
    kinds = sorted(ImportBatch.objects.values_list("kind", flat=True))  # seeding again imports nothing again
    assert kinds == ["jobs", "members", "pairs", "students"]  # the student's predictions are an import too


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


# --- the loop, seeded once (issue 14): every page has something real on it the first time ---------------------
def _user(username):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def _demo_run():
    return LabelingRun.objects.get(purpose=LabelingRun.Purpose.LABELING, idempotency_key=demo.RUN_KEY)


def _everything() -> dict[str, int]:
    """How many rows every model of the app holds (users included): what a second seed must not change."""
    models = [m for m in apps.get_models() if m._meta.app_label in ("labeling", "exports", "policyhub", "auth")]
    return {m._meta.label: m.objects.count() for m in models}


def test_the_demo_run_is_finished_and_the_students_disagreements_wait_in_the_review_queue(seeded):
    run = _demo_run()
    assert run.status == LabelingRun.Status.SUCCEEDED
    assert run.teacher_config.provider == "heuristic" and run.policy_version.number == 1
    assert run.candidates.count() == 24
    queued = run.candidates.filter(reason_student_disagreement=True)
    assert queued.count() == 10 and not run.candidates.filter(reason_student_disagreement=False).exclude(
        approved_by=ApprovedBy.TEACHER
    )  # only what the student disagreed with went to humans
    assert queued.filter(review_state=ReviewState.PENDING).exists()
    assert review_queue_count(user=_user("annotator")) > 0  # items the annotator has not reviewed yet
    item = review_claim_next(user=_user("annotator"), run_id=run.pk)
    assert item is not None and item.review_state == ReviewState.PENDING and item.label


def test_some_items_were_reviewed_one_adjudicated_and_one_waits_for_the_owner(seeded):
    run = _demo_run()
    approved = run.candidates.filter(review_state=ReviewState.DONE)
    assert approved.filter(approved_by=ApprovedBy.REVIEWERS).count() >= 3
    adjudicated = approved.get(approved_by=ApprovedBy.ADJUDICATOR)
    assert adjudicated.reviews.filter(kind=Review.Kind.ADJUDICATION, reviewer=_user("owner")).exists()
    assert set(adjudicated.reviews.filter(kind=Review.Kind.REVIEW).values_list("label", flat=True)) != {
        adjudicated.approved_label
    }  # the two reviewers disagreed
    assert adjudication_queue().count() == 1


def test_the_gold_set_holds_the_human_approved_items_and_the_draft_previews_and_publishes(seeded):
    policy = Policy.objects.get(slug="member-job-match")
    human = _demo_run().candidates.filter(approved_by__in=[ApprovedBy.REVIEWERS, ApprovedBy.ADJUDICATOR])
    gold = GoldLabel.objects.filter(policy=policy)
    assert gold.count() == human.count() >= 4
    assert dict(gold.values_list("pair_id", "label")) == dict(human.values_list("pair_id", "approved_label"))

    owner, draft = _user("owner"), policy.versions.get(number=2)
    preview = draft_preview_start(user=owner, draft=draft, config=TeacherConfig.objects.get(), idempotency_key="t")
    for run_id in (preview.draft_run_id, preview.published_run_id):
        for chunk in RunChunk.objects.filter(run_id=run_id).exclude(status=RunChunk.Status.DONE):
            labeling_run_chunk_process(run_id=run_id, chunk_index=chunk.index)
    check = publish_gate_check(draft=PolicyVersion.objects.get(pk=draft.pk), user=owner)
    assert check.passed, check
    published = policy_services.policy_version_publish(version=draft, user=owner)
    assert published.status == PolicyVersion.Status.PUBLISHED


def test_an_annotator_flagged_a_rule_and_the_owner_sees_it(seeded):
    policy = Policy.objects.get(slug="member-job-match")
    flag = PolicyFeedback.objects.get(policy=policy)
    assert flag.created_by == _user("annotator") and flag.status == PolicyFeedback.Status.OPEN
    assert flag.kind == PolicyFeedback.Kind.UNCLEAR_RULE and flag.rule_ids == ["R6"]
    assert flag.candidate.reviews.filter(reviewer=flag.created_by).exists()
    assert list(feedback_list(user=_user("owner"), policy=policy)) == [flag]


def test_quality_gates_are_set_on_the_policy(seeded):
    gates = QualityGates.objects.get(policy__slug="member-job-match")
    assert gates.configured and gates.min_gold_accuracy == 0.8 and gates.updated_by == _user("owner")


def test_one_export_is_built_and_its_checksums_verify(seeded):
    export = DatasetExport.objects.get()
    assert export.status == DatasetExport.Status.READY and export.created_by == _user("engineer")
    assert export.rows_total == 24  # the run's labels, as the teacher approved them before the student's report
    assert export.archive_sha256 and export.files
    assert export_verify(export=export) == []


def test_the_student_evaluation_report_has_figures(seeded):
    evaluation = StudentEvaluation.objects.get()
    assert (evaluation.student_name, evaluation.export) == (demo.STUDENT[0], DatasetExport.objects.get())
    report = student_report(evaluation=evaluation)
    teacher = report.comparison("teacher").evaluation.accuracy
    assert teacher.n == DatasetExport.objects.get().rows_total
    assert 0.5 < teacher.accuracy < 1  # it agrees with most labels, not all
    assert report.disagreements["teacher"] > 0


def test_the_red_team_run_of_v1_is_finished_and_its_report_has_figures(seeded):
    red_team_run = RedTeamRun.objects.get()
    assert red_team_run.policy_version.number == 1 and red_team_run.teacher_config.provider == "heuristic"
    assert red_team_run.is_finished
    report = red_team_report(run=red_team_run)
    assert set(report.categories) == set(RedTeamCategory.values) - {RedTeamCategory.CUSTOM}  # custom ones are uploaded
    assert all(f.variants > 0 and f.attack_success.total > 0 for f in report.categories.values())


def test_every_page_of_the_loop_shows_the_demo_to_its_role(seeded, client):
    red_team_run, export, evaluation = (
        RedTeamRun.objects.get(),
        DatasetExport.objects.get(),
        StudentEvaluation.objects.get(),
    )
    waiting = adjudication_queue().get()
    slug = "/policies/member-job-match"
    pages = {  # path: something of the demo's the page shows
        "annotator": {"/review/": "Submit"},
        "owner": {
            "/review/adjudication/": f"/review/adjudication/{waiting.pk}/",
            f"{slug}/feedback/": "is a six-week course enough?",
            f"{slug}/gold/": GoldLabel.objects.first().pair.member.external_id,
            f"{slug}/gates/": "0.8",
            f"{slug}/redteam/": demo.RED_TEAM_SET,
            f"/redteam/runs/{red_team_run.pk}/": "protected_attribute",
        },
        "engineer": {
            f"/runs/{_demo_run().pk}/": "heuristic-baseline",
            f"/exports/{export.pk}/": export.archive_sha256,
            "/students/": demo.STUDENT[0],
            f"/students/{evaluation.pk}/": demo.STUDENT[0],
        },
    }
    for username, shown in pages.items():
        client.force_login(_user(username))
        for path, text in shown.items():
            response = client.get(path)
            assert response.status_code == 200, (username, path)
            assert text in response.content.decode(), (username, path, text)


def test_seeding_again_adds_nothing(seeded):
    before = _everything()
    files = sorted(p.name for p in Path(export_dir(DatasetExport.objects.get())).rglob("*"))

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert _everything() == before
    assert sorted(p.name for p in Path(export_dir(DatasetExport.objects.get())).rglob("*")) == files


def test_seeding_again_leaves_what_people_did_since_alone(seeded):
    gold = GoldLabel.objects.filter(policy__slug="member-job-match").order_by("id").first()
    gold_remove(user=_user("owner"), gold_id=gold.pk, reason="Not sure about R2 here.")
    before = _everything()

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert _everything() == before
    assert not GoldLabel.objects.filter(pk=gold.pk).exists()  # not marked gold again


def test_the_benchmarks_seed_without_the_loop(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    result = demo.demo_seed()
    assert result.created and Pair.objects.count() == 24
    assert not LabelingRun.objects.exists() and not DatasetExport.objects.exists()
