"""Demo data for the embedded quickstart: one user per role, a member–job matching policy with a published v1 and
a draft v2, a few members, jobs and their pairs, and teacher configs. Idempotent: running it again changes nothing
and prints the same credentials."""

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
DEMO_USERS = {"owner": roles.POLICY_OWNER, "annotator": roles.ANNOTATOR, "engineer": roles.ML_ENGINEER}

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
def demo_seed() -> DemoResult:
    credentials = _demo_users()
    engineer = get_user_model().objects.get(username="engineer")
    _demo_data(engineer)
    existing = Policy.objects.filter(slug=DEMO_SLUG).first()
    if existing:
        return DemoResult(credentials, existing, created=False)
    owner = get_user_model().objects.get(username="owner")
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
    return DemoResult(credentials, policy, created=True)
