"""Demo data for the embedded quickstart: one user per role and a member–job matching policy with a published
v1 and a draft v2. Idempotent: running it again changes nothing and prints the same credentials."""

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


@transaction.atomic
def demo_seed() -> DemoResult:
    credentials = _demo_users()
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
