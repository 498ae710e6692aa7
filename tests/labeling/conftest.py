import io

import pytest

from labeling.services import import_file


@pytest.fixture
def do_import(db):
    """Import ``text`` (str or bytes) as ``kind`` from a file called ``name``."""

    def run(kind: str, name: str, text: str | bytes, user=None):
        data = text.encode("utf-8") if isinstance(text, str) else text
        return import_file(kind=kind, stream=io.BytesIO(data), name=name, user=user)

    return run


MEMBERS_CSV = (
    "member_id,headline,skills,seniority,location,summary\n"
    "m1,Data engineer,Python;SQL;Airflow,senior,Berlin,Builds pipelines\n"
    'm2,Registered nurse,"Triage; ICU",mid,Paris,"Night shifts, ICU"\n'
)
JOBS_JSONL = (
    '{"job_id": "j1", "title": "Senior data engineer", "description": "Build pipelines in Python.", '
    '"required_skills": ["Python", "SQL"], "seniority": "senior", "location": "Berlin"}\n'
    '{"job_id": "j2", "title": "ICU nurse", "description": "Intensive care unit.", "required_skills": "ICU;Triage"}\n'
)


@pytest.fixture
def members_and_jobs(do_import):
    assert do_import("members", "members.csv", MEMBERS_CSV).ok
    assert do_import("jobs", "jobs.jsonl", JOBS_JSONL).ok


PAIRS_CSV = "member_id,job_id\nm1,j1\nm1,j2\nm2,j1\nm2,j2\n"


@pytest.fixture
def pairs(members_and_jobs, do_import):
    from labeling.models import Pair

    assert do_import("pairs", "pairs.csv", PAIRS_CSV).ok
    return list(Pair.objects.order_by("id"))


@pytest.fixture
def published(policy):
    """The published v1 of the shared policy fixture."""
    return policy.versions.get(number=1)


@pytest.fixture
def make_config(db):
    from labeling.models import TeacherConfig

    def make(name="fake", **fields):
        defaults = {"provider": "openai", "model": "fake-teacher", "samples_per_pair": 1, "temperature": 0.0}
        return TeacherConfig.objects.create(name=name, **{**defaults, **fields})

    return make


@pytest.fixture
def process_run():
    """Run every pending chunk of a run in this process, as the worker would."""
    from labeling.models import RunChunk
    from labeling.services import labeling_run_chunk_process

    def run_all(run):
        for chunk in RunChunk.objects.filter(run=run, status="pending").order_by("index"):
            labeling_run_chunk_process(run_id=run.pk, chunk_index=chunk.index)
        run.refresh_from_db()
        return run

    return run_all


@pytest.fixture
def fake_openai(monkeypatch):
    """A real local OpenAI-compatible server; the teacher reaches it through the real openai client."""
    from tests.fakes.openai_server import FakeOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")  # the provider reads the key from the environment
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai_config(make_config, fake_openai):
    def make(name="fake", **fields):
        return make_config(name, **{"base_url": fake_openai.base_url, "request_timeout": 5, **fields})

    return make


def answer(label, rationale="The profile fits the posting.", rules=("R1",), probs=None):
    """A fake-teacher responder that always gives this answer."""

    def respond(request, call_number):
        reply = {"label": label, "rationale": rationale, "cited_rules": list(rules)}
        if probs:
            reply["probs"] = probs
        return reply

    return respond


@pytest.fixture
def review_items(db, published, make_user):
    """``make(n, reviewers=1)``: n candidates of a run waiting for review (routed low_confidence)."""
    import io

    from labeling.models import Candidate
    from labeling.services import import_file, labeling_run_create

    def make(n: int, reviewers: int = 1):
        members = "member_id,headline\n" + "".join(f"r{i},Member {i}\n" for i in range(n))
        assert import_file(kind="members", stream=io.BytesIO(members.encode()), name=f"rm{n}.csv").ok
        assert import_file(kind="jobs", stream=io.BytesIO(b"job_id,title,description\nrj,Job,Work\n"), name="rj.csv").ok
        pairs = "member_id,job_id\n" + "".join(f"r{i},rj\n" for i in range(n))
        batch = import_file(kind="pairs", stream=io.BytesIO(pairs.encode()), name=f"rp{n}.csv").batch
        from labeling.models import TeacherConfig

        config, _ = TeacherConfig.objects.get_or_create(name="review-fixture", defaults={"provider": "heuristic"})
        run = labeling_run_create(
            version=published, config=config, selection={"import_batch": batch.pk}, reviewers_per_item=reviewers
        )
        Candidate.objects.filter(run=run).update(
            status="labeled", label="strong_match", routing="needs_review", reason_low_confidence=True,
            review_state="pending", reviews_needed=reviewers, confidence=0.5,
            label_distribution={"strong_match": 0.5, "partial_match": 0.3, "no_match": 0.2},
        )  # fmt: skip
        return run

    return make


@pytest.fixture
def reviewed_runs(review_items, make_user):
    """``make(runs, items)``: that many runs of v1 whose items two annotators review (labels varying by item, so
    some agree and some do not), each item's teacher sample citing R1 or R2 and R3."""
    from labeling.models import Candidate, TeacherSample
    from labeling.services import review_claim_next, review_submit
    from policyhub import roles

    labels = ("strong_match", "partial_match", "no_match")
    ana, bea = make_user("ana", roles.ANNOTATOR), make_user("bea", roles.ANNOTATOR)

    def make(runs: int, items: int):
        for r in range(runs):
            run = review_items(items, reviewers=2)
            for k, candidate in enumerate(Candidate.objects.filter(run=run).order_by("id")):
                cited = ["R1"] if k % 2 else ["R2", "R3"]
                TeacherSample.objects.create(
                    run=run,
                    pair=candidate.pair,
                    sample_index=0,
                    label="strong_match",
                    rationale="fits",
                    cited_rules=cited,
                )
            for n, annotator in enumerate((ana, bea)):
                k = 0
                while (item := review_claim_next(user=annotator, run_id=run.pk)) is not None:
                    review_submit(user=annotator, candidate_id=item.pk, label=labels[(k * (n + 1) + r) % 3])
                    k += 1

    return make


# --- red-team runs -------------------------------------------------------------------------------------------
RED_TEAM_CATEGORIES = ["injection", "protected_attribute", "irrelevant_noise", "hallucination_bait"]


@pytest.fixture
def rt_pairs(db):
    """24 clean pairs (8 members × 3 jobs) with nothing a protected-attribute cue or a bait term would match."""
    from labeling.models import Job, Member, Pair

    members = Member.objects.bulk_create(
        Member(external_id=f"m{i:02}", headline=f"Engineer {i}", skills=["Python", "SQL"], seniority="mid",
               location="Berlin", summary=f"Builds data systems, {i + 2} years in retail.")
        for i in range(8)
    )  # fmt: skip
    jobs = Job.objects.bulk_create(
        Job(external_id=f"j{i}", title=f"Data engineer {i}", description="Build pipelines in Python and SQL.",
            required_skills=["Python", "SQL"], seniority="mid", location="Berlin")
        for i in range(3)
    )  # fmt: skip
    return Pair.objects.bulk_create(Pair(member=m, job=j) for m in members for j in jobs)


@pytest.fixture
def rt_set(owner, policy, rt_pairs):
    """A red-team set of 8 of them, every category (32 variants)."""
    from labeling.services.redteam import red_team_set_create

    return red_team_set_create(
        user=owner, policy=policy, name="t", seed=7, sample_size=8, categories=RED_TEAM_CATEGORIES
    )


from .gates_helpers import gated_draft, previewed  # noqa: E402, F401 - the quality-gate tests' fixtures
from .labelmap_helpers import mapped_draft  # noqa: E402, F401 - the label-mapping tests' fixture
