"""Demo data for the embedded quickstart: one user per role (and a second annotator, so reviews can disagree), a
member–job matching policy with a published v1 and a draft v2, a few members, jobs and their pairs, teacher configs,
and the loop run once through the services (:func:`_demo_loop`): a finished heuristic run, a built export of it, a
student evaluation whose disagreements wait in the review queue, reviewed and adjudicated items, a gold set, a
policy-feedback flag, quality gates and a finished red-team run. Idempotent: running it again adds nothing and
prints the same credentials."""

import io
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from . import roles, services
from .models import Policy

DEMO_SLUG = "member-job-match"
DEMO_USERS = {
    "owner": roles.POLICY_OWNER,
    "annotator": roles.ANNOTATOR,
    "engineer": roles.ML_ENGINEER,
    "annotator2": roles.ANNOTATOR,  # a second opinion: items need two reviews, and two can disagree
}

LABELS = [
    {
        "key": "strong_match",
        "title": "Strong match",
        "definition": "The member meets the must-have requirements and would plausibly apply and be shortlisted.",
    },
    {
        "key": "partial_match",
        "title": "Partial match",
        "definition": "Some requirements are met; a gap (skills, seniority or location) makes success uncertain.",
    },
    {
        "key": "no_match",
        "title": "No match",
        "definition": "A must-have requirement is clearly missing, or the job is in another field altogether.",
    },
]

RULES = [
    {
        "id": "R1",
        "text": "Most required skills of the job appear in the member's skills or recent experience.",
        "positive_examples": ["Job needs Python and SQL; member lists Python, SQL, Airflow."],
        "negative_examples": ["Job needs Kubernetes; member lists only Excel."],
    },
    {"id": "R2", "text": "Seniority differs by at most one level (junior, mid, senior, staff, principal)."},
    {
        "id": "R3",
        "text": "Location is compatible: same metro area, remote job, or the member is open to relocate.",
    },
    {
        "id": "R4",
        "text": "A missing must-have certification or licence makes it no_match, whatever else fits.",
    },
    {
        "id": "R5",
        "text": "Judge only from the profile and the posting; never infer or mention age, gender, "
        "ethnicity, religion, disability, nationality or family status.",
    },
    {
        "id": "R6",
        "text": "Transferable skills from an adjacent field count as partial evidence, not full evidence.",
    },
]

BODY_V1 = """# Member–job match policy

We recommend jobs a member would **want** and be **competitive** for. A match is judged from the member's
profile and the job posting only.

## How to decide
1. Check the must-haves first (skills, certifications, seniority).
2. Then location and work mode.
3. When in doubt between two labels, choose the more conservative one.

Cite every rule your decision rests on.
"""

BODY_V2 = (
    BODY_V1
    + """
## Career changers
Members moving into a new field are a growth segment: treat a recent bootcamp or certificate in the job's
field as evidence of the required skills (see R7).
"""
)


@dataclass
class DemoResult:
    credentials: dict[str, tuple[str, str]]  # username -> (role, password)
    policy: Policy
    created: bool


def _credentials_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.txt"


def _demo_users() -> dict[str, tuple[str, str]]:
    """Create the demo users once with random passwords kept (0600) under var/; return their credentials."""
    path = _credentials_file()
    known = {}
    if path.exists():
        for line in path.read_text().splitlines():
            username, role, password = line.split("\t")
            known[username] = (role, password)
    User = get_user_model()
    for username, role in DEMO_USERS.items():
        user = User.objects.filter(username=username).first()
        if user is None or username not in known:
            password = secrets.token_urlsafe(9)
            user = user or User(username=username, email=f"{username}@example.com")
            user.set_password(password)
            user.save()
            known[username] = (role, password)
        user.groups.add(Group.objects.get(name=role))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{u}\t{r}\t{p}\n" for u, (r, p) in known.items()))
    path.chmod(0o600)
    return {u: known[u] for u in DEMO_USERS}


MEMBERS_CSV = """member_id,headline,skills,seniority,location,summary
m-ana,Senior data engineer,Python;SQL;Airflow;dbt,senior,Berlin,Builds batch and streaming pipelines.
m-ben,Junior frontend developer,JavaScript;React;CSS,junior,Lisbon,Bootcamp graduate building web apps.
m-chloe,ICU nurse,Triage;Intensive care;Patient safety,mid,Paris,Eight years in intensive care units.
m-dev,Staff machine learning engineer,Python;PyTorch;Kubernetes;SQL,staff,Remote,Ranking and recommendation models.
m-eva,Accountant,Excel;IFRS;SAP,mid,Berlin,Monthly close and audits for a retailer.
m-femi,Data analyst moving into engineering,SQL;Python;Tableau,mid,London,"Analytics, now learning Airflow."
"""
JOBS_JSONL = "\n".join(
    json.dumps(job)
    for job in [
        {"job_id": "j-data", "title": "Senior data engineer", "description": "Own our Airflow and dbt pipelines.",
         "required_skills": ["Python", "SQL", "Airflow"], "seniority": "senior", "location": "Berlin"},
        {"job_id": "j-ml", "title": "Machine learning engineer", "description": "Train and serve ranking models.",
         "required_skills": ["Python", "PyTorch"], "seniority": "senior", "location": "Remote"},
        {"job_id": "j-nurse", "title": "Intensive care nurse", "description": "Night shifts in a 20-bed ICU.",
         "required_skills": ["Intensive care", "Triage"], "seniority": "mid", "location": "Paris"},
        {"job_id": "j-web", "title": "Frontend developer", "description": "Build our React design system.",
         "required_skills": ["JavaScript", "React"], "seniority": "mid", "location": "Lisbon"},
    ]
) + "\n"  # fmt: skip


def _load(kind: str, name: str, text: str, user) -> None:
    from labeling.services import import_file

    result = import_file(kind=kind, stream=io.BytesIO(text.encode()), name=name, user=user)
    if not result.ok:
        raise RuntimeError(f"demo data is broken: {result.summary()} {result.batch.errors[:3]}")


def _demo_data(user) -> None:
    """Members, jobs, every member×job pair, and teacher configs: the heuristic baseline always, an OpenAI one
    when OPENAI_API_KEY is set (model from OPENAI_MODEL, default gpt-4o-mini)."""
    from labeling.models import Job, Member, TeacherConfig
    from labeling.services import teacher_config_save
    from labeling.teacher.endpoints import key_name_for_env

    _load("members", "demo-members.csv", MEMBERS_CSV, user)
    _load("jobs", "demo-jobs.jsonl", JOBS_JSONL, user)
    members = Member.objects.filter(external_id__startswith="m-").values_list("external_id", flat=True)
    jobs = Job.objects.filter(external_id__startswith="j-").values_list("external_id", flat=True)
    pairs = "member_id,job_id\n" + "".join(f"{m},{j}\n" for m in sorted(members) for j in sorted(jobs))
    _load("pairs", "demo-pairs.csv", pairs, user)
    configs = [
        TeacherConfig(
            name="heuristic-baseline", provider=TeacherConfig.Provider.HEURISTIC, model="heuristic-v1",
            samples_per_pair=1, temperature=0, api_key_name="",
        )
    ]  # fmt: skip
    if os.environ.get("OPENAI_API_KEY"):
        configs.append(
            TeacherConfig(
                name="openai-default", provider=TeacherConfig.Provider.OPENAI, samples_per_pair=3,
                model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
                api_key_name=key_name_for_env("OPENAI_API_KEY") or "openai",
            )
        )  # fmt: skip
    for config in configs:
        if not TeacherConfig.objects.filter(name=config.name).exists():
            teacher_config_save(config=config, user=user)


@transaction.atomic
def demo_seed(*, with_loop: bool = False) -> DemoResult:
    """The users, data and policy; ``with_loop`` (``manage.py seed_demo``) also the loop's first round
    (:func:`_demo_loop`). The benchmarks seed without it: they bring their own runs and queues."""
    credentials = _demo_users()
    engineer = get_user_model().objects.get(username="engineer")
    _demo_data(engineer)
    policy = Policy.objects.filter(slug=DEMO_SLUG).first()
    created = policy is None
    if created:
        policy = _demo_policy(get_user_model().objects.get(username="owner"))
    if with_loop:
        _demo_loop(policy)
    return DemoResult(credentials, policy, created=created)


def _demo_policy(owner) -> Policy:
    policy = services.policy_create(
        slug=DEMO_SLUG,
        name="Member–job match",
        task_description="Decide how well the job matches the member: would the member want it and be competitive?",
        owner=owner,
        body=BODY_V1,
        labels=LABELS,
        rules=RULES,
    )
    v1 = policy.versions.get(number=1)
    services.policy_version_publish(version=v1, user=owner)
    draft = services.policy_version_draft_start(policy=policy, user=owner)
    rules_v2 = [dict(rule) for rule in draft.rules]
    rules_v2[1]["text"] = "Seniority differs by at most one level; two levels down is partial_match at best."
    rules_v2.append(
        {
            "id": "",
            "text": "A recent bootcamp or certificate in the job's field counts as evidence of "
            "the required skills for career changers.",
        }
    )
    services.policy_version_draft_save(
        version=draft, user=owner, revision=draft.revision, body=BODY_V2, labels=draft.labels, rules=rules_v2
    )
    return policy


# --- the loop, run once -----------------------------------------------------------------------------------------
#: Idempotency keys of the demo's writes (each service returns the first object for a repeated key).
RUN_KEY, EXPORT_KEY, STUDENT_KEY, FEEDBACK_KEY, RED_TEAM_KEY = (
    "demo-run", "demo-export", "demo-student", "demo-feedback", "demo-red-team",
)  # fmt: skip
RED_TEAM_SET = "Demo red team"
STUDENT = ("tiny-matcher", "1")
#: How many queue items the annotators review: the first reviews REVIEWED items; the second gives a second opinion
#: on all but the last of them, disagreeing on DISAGREE (the owner adjudicates one, one stays waiting).
REVIEWED, DISAGREE = 6, 2
#: The student's wrong answers: the rows (in pair order) where it picks another label than the export's.
STUDENT_WRONG = {1, 3}  # index % 5: 10 of the 24 rows


def _demo_loop(policy: Policy) -> None:
    """Every page's first content, made by the same services the pages call; each step is skipped when its result
    is already there (or its service returns the first object for the demo's idempotency key)."""
    from labeling.services import gold_mark_run

    User = get_user_model()
    owner, engineer = User.objects.get(username="owner"), User.objects.get(username="engineer")
    annotators = [User.objects.get(username="annotator"), User.objects.get(username="annotator2")]
    published = policy.versions.get(number=1)
    run = _demo_run(published, engineer)
    export = _demo_export(published, run, engineer)
    _demo_student(export, engineer)  # its disagreements with the teacher go to the review queue
    if not run.candidates.filter(reviews__isnull=False).exists():  # once: what people did since is theirs
        _demo_reviews(run, annotators, owner)
        gold_mark_run(user=owner, run=run)
    _demo_feedback(run, annotators[0])
    _demo_gates(policy, owner)
    _demo_red_team(policy, published, owner)


def _heuristic():
    from labeling.models import TeacherConfig

    return TeacherConfig.objects.get(name="heuristic-baseline")


def _process(run) -> None:
    """Label the run's pending chunks here and now, as a worker would (the heuristic teacher needs no network)."""
    from labeling.models import RunChunk
    from labeling.services import labeling_run_chunk_process

    for index in RunChunk.objects.filter(run=run).exclude(status=RunChunk.Status.DONE).values_list("index", flat=True):
        labeling_run_chunk_process(run_id=run.pk, chunk_index=index)
    run.refresh_from_db()


def _demo_run(version, engineer):
    """A finished heuristic run over every pair. The heuristic is 0.8 sure of each answer, above the default
    threshold, so it approves them all; an item a student disagrees with later needs two reviews."""
    from labeling.services import labeling_run_create

    run = labeling_run_create(
        version=version, config=_heuristic(), selection={"all": True}, user=engineer, idempotency_key=RUN_KEY,
        chunk_size=100, reviewers_per_item=2, enqueue_chunks=False,
    )  # fmt: skip
    _process(run)
    if run.status != run.Status.SUCCEEDED:
        raise RuntimeError(f"demo data is broken: the heuristic run #{run.pk} is {run.status}: {run.error}")
    return run


def _demo_reviews(run, annotators, owner) -> None:
    """The annotators review a few queue items through the queue (claim, submit); where they disagree, the owner
    adjudicates one item and leaves the other waiting on the adjudication page."""
    from labeling.models import ReviewState
    from labeling.services import review_adjudicate, review_claim_next, review_submit

    first, second = annotators
    labels = run.policy_version.label_keys
    reviewed = []
    for _ in range(REVIEWED):
        item = review_claim_next(user=first, run_id=run.pk)
        if item is None:
            break
        review_submit(user=first, candidate_id=item.pk, label=item.label, note="Matches the rules the teacher cited.")
        reviewed.append(item)
    disagree = {item.pk for item in reviewed[-1 - DISAGREE : -1]}
    for _ in reviewed[:-1]:  # the last one keeps waiting for its second review
        item = review_claim_next(user=second, run_id=run.pk)
        if item is None:
            break
        label = item.label
        if item.pk in disagree:
            label = labels[(labels.index(label) + 1) % len(labels)]
        review_submit(user=second, candidate_id=item.pk, label=label, note="")
    waiting = run.candidates.filter(review_state=ReviewState.ADJUDICATION).order_by("id").first()
    if waiting is not None:
        review_adjudicate(user=owner, candidate_id=waiting.pk, label=waiting.label,
                          reason="R1 and R2 both hold: the teacher's label stands.")  # fmt: skip


def _demo_feedback(run, annotator) -> None:
    """The annotator flags an item they reviewed as a policy problem: rule R6 left them unsure."""
    from labeling.models import PolicyFeedback
    from labeling.services.feedback import feedback_create

    if PolicyFeedback.objects.filter(created_by=annotator, idempotency_key=FEEDBACK_KEY).exists():
        return
    item = run.candidates.filter(reviews__reviewer=annotator).order_by("id").last()  # flags need an item one had
    if item is None:
        return
    feedback_create(
        user=annotator, candidate_id=item.pk, kind=PolicyFeedback.Kind.UNCLEAR_RULE, rule_ids=["R6"],
        note="R6 says an adjacent field counts as partial evidence, but not how recent or how long the experience "
        "must be: is a six-week course enough?",
        idempotency_key=FEEDBACK_KEY,
    )  # fmt: skip


def _demo_gates(policy: Policy, owner) -> None:
    """The owner's publishing thresholds: at least 80% right on gold, no rule 5 points worse, red-team defaults."""
    from labeling.models import QualityGates
    from labeling.services.gates import quality_gates_update

    if not QualityGates.objects.filter(policy=policy).exists():
        quality_gates_update(policy=policy, user=owner, min_gold_accuracy=0.8, max_rule_accuracy_drop=0.05)


def _demo_export(version, run, engineer):
    """One built export of the run's approved labels (built here; the worker's copy of the task finds it ready)."""
    from exports.services import export_build, export_create

    export, _ = export_create(
        user=engineer, version=version, runs=[run], idempotency_key=EXPORT_KEY,
        split={"train": 0.6, "validation": 0.2, "test": 0.2, "seed": 7},
    )  # fmt: skip
    export = export_build(export_id=export.pk)
    if export.status != export.Status.READY:
        raise RuntimeError(f"demo data is broken: export #{export.pk} is {export.status}: {export.error}")
    return export


def _demo_student(export, engineer) -> None:
    """A small student's predictions on every exported row: right on most, confidently wrong on some; the owner's
    loop starts again from its disagreements with the teacher, queued for the annotators."""
    from labeling.models import Candidate, StudentEvaluation
    from labeling.services.students import export_rows, student_disagreements_queue, student_evaluation_import

    labels = export.policy_version.label_keys
    rows = export_rows(
        export, set(Candidate.objects.filter(run__in=export.runs.all()).values_list("pair_id", flat=True))
    )
    lines = ["pair_id,label," + ",".join(f"p_{key}" for key in labels)]
    for index, (pair_id, (_, label, _)) in enumerate(sorted(rows.items())):
        wrong = index % 5 in STUDENT_WRONG
        guess = labels[(labels.index(label) + 1) % len(labels)] if wrong else label
        sure = 0.9 if wrong or index % 3 else 0.6
        probs = [sure if key == guess else round((1 - sure) / (len(labels) - 1), 4) for key in labels]
        lines.append(f"{pair_id},{guess}," + ",".join(f"{p:.4f}" for p in probs))
    result = student_evaluation_import(
        user=engineer, export=export, stream=io.BytesIO(("\n".join(lines) + "\n").encode()),
        name="tiny-matcher-predictions.csv", student_name=STUDENT[0], student_version=STUDENT[1],
        idempotency_key=STUDENT_KEY,
    )  # fmt: skip
    evaluation = result.evaluation
    if not result.ok:
        raise RuntimeError(f"demo data is broken: the student's predictions: {result.errors[:3]}")
    if StudentEvaluation.objects.filter(pk=evaluation.pk, queued_at__isnull=True).exists():
        student_disagreements_queue(user=engineer, evaluation=evaluation, against="teacher")


def _demo_red_team(policy: Policy, version, owner) -> None:
    """A red-team set of every category over a few pairs, and a finished run of it on v1 with the heuristic."""
    from labeling.models import RedTeamCategory, RedTeamSet
    from labeling.services.redteam import red_team_run_start, red_team_set_create

    red_team_set = RedTeamSet.objects.filter(policy=policy, name=RED_TEAM_SET).first()
    if red_team_set is None:
        red_team_set = red_team_set_create(
            user=owner,
            policy=policy,
            name=RED_TEAM_SET,
            seed=7,
            sample_size=6,
            categories=[c for c in RedTeamCategory.values if c != RedTeamCategory.CUSTOM],  # custom is uploaded
        )
    red_team_run = red_team_run_start(
        user=owner, red_team_set=red_team_set, version=version, config=_heuristic(), idempotency_key=RED_TEAM_KEY
    )
    for part in red_team_run.runs.all():
        _process(part)
