"""The claim extractor and grounding check (labeling/pipeline/claims.py) on tricky text."""

import pytest

from labeling.pipeline import claims, trust
from labeling.teacher import LabelSpace, TeacherAnswer
from labeling.teacher.heuristic import score_pair

NO_POLICY = claims.policy_words("", (), ())
SPACE = LabelSpace(labels=("strong_match", "partial_match", "no_match"), rule_ids=("R1", "R2", "R3"))
PROMPT = (
    "## Rules\n- R1: Required skills appear in the member's skills.\n- R2: Seniority differs by at most one level "
    "(junior, mid, senior).\n- R4: A missing must-have certification or licence makes it no_match.\n"
)


def invented(rationale: str, member_text: str = "", job_text: str = "", policy=NO_POLICY) -> list[str]:
    member, job = {"summary": member_text}, {"description": job_text}
    return [c.text for c in claims.ungrounded(rationale, member=member, job=job, policy=policy)]


def kinds(rationale: str) -> list[tuple[str, str]]:
    return [(c.text, c.kind) for c in claims.extract(rationale)]


@pytest.mark.parametrize(
    ("claim", "pair_text", "supported"),
    [
        ("Has 5+ years of Go.", "At least 5 years of Go.", True),
        ("Has 5+ years of Go.", "5 years of Go.", True),
        ("Has 5+ years of Go.", "Go for 7 years.", True),
        ("Has 5+ years of Go.", "3 years of Go.", False),
        ("Has 6 years of Go.", "5+ years of Go required.", False),  # the job's minimum is not the member's years
        ("Has 4 years of Go.", "3-5 years of Go.", True),
        ("Has 4 years of Go.", "3–5 years of Go.", True),
        ("Has 4 years of Go.", "3 to 5 years of Go.", True),
        ("Has 7 years of Go.", "3-5 years of Go.", False),
        ("Asks for 3-5 years.", "Between 3 and 5 years.", True),
        ("Eight years in ICUs.", "8 years in intensive care.", True),
        ("8 years in ICUs.", "Eight years in intensive care units.", True),
        ("Over a decade of nursing.", "Ten years of nursing.", True),
        ("About 10 years of sales.", "9 years in sales.", True),
        ("Earns €60k.", "Salary 60,000 EUR.", True),
        ("Earns $60k.", "Salary €60,000.", False),
        ("Quota of £800k.", "Quota of £800,000.", True),
        ("Closed 120% of target.", "Reached 120 percent of target.", True),
        ("Led a team of 8.", "Manages 8 engineers.", True),
        ("Led a team of 12.", "Manages 8 engineers.", False),
        ("Since 2019 at the firm.", "Joined in 2019.", True),
    ],
)
def test_numbers_are_compared_as_numbers_within_their_unit(claim, pair_text, supported):
    assert (invented(claim, pair_text) == []) is supported, claims.extract(claim)


def test_counts_and_scores_of_the_rationale_itself_are_no_claims():
    rationale = "score 0.75; 2 of 3 required skills; one level apart; R2 met twice"
    assert [c for c in claims.extract(rationale) if c.kind == "number"] == []


def test_a_ranged_claim_is_reported_as_written():
    assert invented("Needs 3–5 years of Rust and 5+ years of C++.") == ["3–5 years", "5+ years", "Rust", "C++"]


@pytest.mark.parametrize(
    ("claim", "pair_text"),
    [
        ("Strong k8s skills.", "Kubernetes on AWS"),
        ("Knows Postgres well.", "PostgreSQL"),
        ("Writes JS daily.", "JavaScript, React"),
        ("Eight years in ICUs.", "Eight years in an intensive care unit"),
        ("ICU experience.", "Intensive Care Unit nurse"),
        ("The SDR role fits.", "Sales development representative"),
        ("Has a master's degree.", "MSc in Statistics"),
        ("Holds a forklift licence.", "Licensed forklift driver"),
        ("Worked with Node.js and C# daily.", "node.js, C#"),
        ("Managing nurses.", "manages a team of nurses"),
    ],
)
def test_acronyms_synonyms_and_inflections_are_recognised(claim, pair_text):
    assert invented(claim, pair_text) == []


def test_acronyms_and_names_the_pair_lacks_are_claims():
    assert invented("Has an MBA and a PMP; worked at Deutsche Bank in NYC.", "Python developer") == [
        "MBA", "PMP", "Deutsche Bank", "NYC",
    ]  # fmt: skip


def test_capitals_for_emphasis_and_plain_words_opening_a_sentence_are_no_names():
    assert kinds("Strong Python skills. Default answer. She does NOT have it. Overall fine.") == [("Python", "skill")]


@pytest.mark.parametrize(
    ("claim", "pair_text"),
    [
        ("Zoë leads the team.", "Zoe, team lead"),
        ("Zoe leads the team.", "Zoë, team lead"),
        ("Based in São Paulo.", "Sao Paulo"),
        ("Based in Düsseldorf.", "Duesseldorf"),
        ("Based in Dusseldorf.", "Düsseldorf"),
        ("Based in Beijing.", "北京"),
        ("Based in 北京.", "北京"),
        ("Moved to Kraków.", "Krakow"),
        ("Lives in Łódź.", "Lodz"),
    ],
)
def test_accents_and_other_scripts_match_their_ascii_spelling(claim, pair_text):
    assert invented(claim, pair_text) == []


def test_non_ascii_names_the_pair_lacks_are_named_as_written():
    assert invented("She and Zoë moved from São Paulo to 北京 and Düsseldorf.", "Berlin") == [
        "Zoë", "São Paulo", "北京", "Düsseldorf",
    ]  # fmt: skip


def test_quoted_text_is_checked_like_any_other():
    rationale = 'The job asks for "5+ years of Python"; "Kubernetes" is nowhere in the profile.'
    assert [c.text for c in claims.extract(rationale)] == ["5+ years", "Python", "Kubernetes"]
    assert invented(rationale, "Python", "5+ years of Python and Kubernetes") == []


def test_skills_listed_beside_a_named_one_are_claims_too():
    assert invented("Triage, emergency care and intubation skills.", "Triage and emergency care") == [
        "intubation skills"
    ]


def test_policy_words_label_keys_and_rule_ids_are_no_claims():
    policy = claims.policy_words(PROMPT, SPACE.labels, SPACE.rule_ids)
    rationale = "R1 and R2 hold; no certification or licence is missing, so strong_match rather than no_match."
    assert [c.text for c in claims.extract(rationale)] != []  # without the policy these would be claims
    assert invented(rationale, "Python", "Python", policy=policy) == []


def test_a_seniority_level_the_policy_lists_is_still_a_claim_about_the_pair():
    policy = claims.policy_words(PROMPT, SPACE.labels, SPACE.rule_ids)
    assert invented("A senior developer, one level above the job.", "junior developer", "mid", policy=policy) == [
        "senior"
    ]


def test_the_heuristic_baseline_rationale_is_grounded_with_its_derived_counts():
    member = {"member_id": "m", "headline": "Pflegekraft", "skills": ["Triage", "Intensivpflege"],
              "seniority": "mid", "location": "Düsseldorf", "summary": ""}  # fmt: skip
    job = {"job_id": "j", "title": "ICU nurse", "description": "", "required_skills": ["Triage", "ICU", "BLS"],
           "seniority": "senior", "location": "São Paulo"}  # fmt: skip
    score, facts = score_pair(member, job)
    rationale = f"Heuristic baseline (not an LLM): score {score:.2f}; " + "; ".join(facts) + "."
    assert "1 of 3 required skills (Triage)" in rationale
    assert claims.ungrounded(rationale, member=member, job=job, policy=NO_POLICY) == []


def test_the_check_detail_names_each_ungrounded_claim_with_its_kind():
    member = {"member_id": "m1", "headline": "Data engineer", "skills": ["Python"], "summary": "Pipelines"}
    job = {"job_id": "j1", "title": "Data engineer", "description": "Python", "required_skills": ["Python"]}
    answer = TeacherAnswer(key=1, label="strong_match", cited_rules=["R1"],
                           rationale="Python fits (R1); an MBA and 10 years at Google.")  # fmt: skip
    checks = trust.check_answer(answer, space=SPACE, member=member, job=job, system_prompt=PROMPT)
    assert checks["facts_grounded"].as_dict() == {
        "ok": False, "detail": "not in this member or job: 10 years (number), MBA (degree), Google (organisation)",
    }  # fmt: skip
    grounded = TeacherAnswer(key=1, label="strong_match", rationale="Python fits (R1).", cited_rules=["R1"])
    assert trust.check_answer(grounded, space=SPACE, member=member, job=job, system_prompt=PROMPT)["facts_grounded"].ok
