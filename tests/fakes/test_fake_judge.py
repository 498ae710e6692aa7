"""The fake server as a judge, reached with the real openai client: the honest judge reads the pair and the
answer from the request and flags every invented fact (and nothing in a clean answer); the misbehaving judge's
replies are no verdict; judge requests have their own fault queue, so teacher requests are never hit by it."""

import json

import openai
import pytest

from labeling.teacher.base import TeacherAnswer
from labeling.teacher.messages import build_messages
from labeling.teacher.verdicts import judge_messages, judge_parameters, parse_verdict
from tests.fakes.openai_server import INVENTED_FACTS, FakeOpenAI, MisbehavingJudge

MEMBER = {"member_id": "m1", "headline": "Data engineer", "skills": ["Python", "SQL"], "seniority": "senior",
          "location": "Berlin", "summary": "Builds pipelines at Zalando for 6 years."}  # fmt: skip
JOB = {"job_id": "j1", "title": "Senior data engineer", "description": "Build pipelines in Python.",
       "required_skills": ["Python", "SQL"], "seniority": "senior", "location": "Berlin"}  # fmt: skip
LABELS = [{"key": "strong_match", "title": "Strong match", "definition": "Meets the must-haves."}]
RULES = {"R1": "Required skills appear in the member's skills.", "R2": "Seniority differs by at most one level."}


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def ask_judge(server, rationale: str, cited=("R1",)):
    said = TeacherAnswer(key=None, label="strong_match", rationale=rationale, cited_rules=list(cited))
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    params = judge_parameters({"model": "fake-judge", "temperature": 0})
    messages = judge_messages(member=MEMBER, job=JOB, labels=LABELS, rules=RULES, answer=said)
    completion = client.chat.completions.create(messages=messages, **params)
    return completion.choices[0].message.content


def test_the_honest_judge_flags_each_invented_fact_and_nothing_in_a_clean_answer(server):
    clean = "Python and SQL match (R1); a senior engineer in Berlin, building pipelines at Zalando for 6 years."
    verdict, error = parse_verdict(ask_judge(server, clean))
    assert error == ""
    assert verdict == {"grounded": True, "unsupported_claims": [], "consistent": True, "inconsistency": ""}
    for sentence, _claim, _words in INVENTED_FACTS:
        verdict, error = parse_verdict(ask_judge(server, f"Python and SQL match. {sentence}"))
        assert error == "" and verdict["grounded"] is False
        assert verdict["unsupported_claims"] == [sentence], sentence


def test_the_honest_judge_finds_an_answer_resting_on_rules_it_does_not_cite(server):
    verdict, _ = parse_verdict(ask_judge(server, "Skills match under R1 and R2.", cited=("R1",)))
    assert verdict["consistent"] is False
    assert verdict["inconsistency"] == "the rationale relies on R2, which it does not cite"
    verdict, _ = parse_verdict(ask_judge(server, "Skills match.", cited=()))
    assert (verdict["consistent"], verdict["inconsistency"]) == (False, "the label rests on no cited rule")


def test_the_misbehaving_judge_never_gives_a_verdict(server):
    server.judge = MisbehavingJudge()
    errors = [parse_verdict(ask_judge(server, "Python and SQL match."))[1] for _ in range(3)]
    assert errors[0].startswith("not valid JSON") and errors[1] == "the verdict is not a JSON object"
    assert errors[2] == "grounded and consistent must be true or false"
    assert server.judge.calls == 3


def test_judge_faults_hit_judge_requests_only(server):
    server.fail_next("429", judge=True, retry_after=0)
    server.fail_next("malformed_json", judge=True)
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    teacher = client.chat.completions.create(model="teacher", messages=build_messages("policy", MEMBER, JOB))
    assert json.loads(teacher.choices[0].message.content)["label"] == "strong_match"
    with pytest.raises(openai.RateLimitError):
        ask_judge(server, "Python and SQL match.")
    assert parse_verdict(ask_judge(server, "Python and SQL match."))[1].startswith("not valid JSON")
    assert parse_verdict(ask_judge(server, "Python and SQL match."))[1] == ""
    assert server.pending_faults(judge=True) == [] and len(server.judge_requests()) == 3
