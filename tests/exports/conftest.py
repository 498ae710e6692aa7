"""Export fixtures: a published version, a heuristic-teacher run over 12 members × 5 jobs, some items reviewed."""

import io

import pytest

from labeling.models import Candidate, Pair, TeacherConfig
from labeling.services import import_file, labeling_run_create, review_adjudicate, review_claim_next, review_submit
from policyhub import roles
from tests.labeling.conftest import process_run, published  # noqa: F401 - fixtures this one builds on

SKILLS = ["python", "sql", "nursing", "sales", "design"]
LEVELS = ["junior", "mid", "senior"]


def _import(kind: str, text: str, name: str):
    result = import_file(kind=kind, stream=io.BytesIO(text.encode()), name=name)
    assert result.ok, result
    return result.batch


@pytest.fixture
def export_run(published, process_run, make_user, owner, settings, tmp_path):  # noqa: F811
    """A finished heuristic run over 60 pairs; three needs-review items got human labels (one adjudicated)."""
    settings.EXPORTS_ROOT = tmp_path / "exports"
    members = "member_id,headline,skills,seniority,location\n" + "".join(
        f'm{i:02d},Member {i},"{SKILLS[i % 5]},{SKILLS[(i + 1) % 5]}",{LEVELS[i % 3]},City {i % 2}\n' for i in range(12)
    )
    jobs = "job_id,title,description,required_skills,seniority,location\n" + "".join(
        f'j{k},Job {k},"Work with <b>{SKILLS[k]}</b>, ""quoted"" and\nnew lines",{SKILLS[k]},mid,City {k % 2}\n'
        for k in range(5)
    )
    _import("members", members, "xm.csv")
    _import("jobs", jobs, "xj.csv")
    _import("pairs", "member_id,job_id\n" + "".join(f"m{i:02d},j{k}\n" for i in range(12) for k in range(5)), "xp.csv")
    config, _ = TeacherConfig.objects.get_or_create(name="baseline", defaults={"provider": "heuristic"})
    run = labeling_run_create(version=published, config=config, selection={"all": True}, reviewers_per_item=1)
    process_run(run)
    run.refresh_from_db()
    assert Candidate.objects.filter(run=run, status="labeled").count() == Pair.objects.count() == 60
    # make three items need review and review them: two by an annotator, one adjudicated after two disagree
    picked = list(Candidate.objects.filter(run=run).order_by("id")[:3].values_list("id", flat=True))
    Candidate.objects.filter(pk__in=picked).update(
        routing="needs_review", reason_low_confidence=True, review_state="pending", reviews_needed=1,
        approved_label="", approved_by="", approved_at=None,
    )  # fmt: skip
    Candidate.objects.filter(pk=picked[2]).update(reviews_needed=2)
    ann, ann2 = make_user("ann", roles.ANNOTATOR), make_user("ann2", roles.ANNOTATOR)
    for user, label in ((ann, "no_match"), (ann, "partial_match"), (ann, "strong_match"), (ann2, "no_match")):
        item = review_claim_next(user=user, run_id=run.pk)
        review_submit(user=user, candidate_id=item.pk, label=label, note=f"{user.username} says {label}")
    review_adjudicate(user=owner, candidate_id=picked[2], label="no_match", reason="R1 is not met.")
    return run
