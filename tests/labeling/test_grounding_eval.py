"""The claim grounding check keeps its figures on the labelled set (tests/labeling/data/grounding_cases.jsonl;
``bench/grounding.py`` prints them): recall >= 0.9 on hallucinated rationales, at most 5 % of grounded ones
flagged, and the invented claim itself named in the check's detail."""

from collections import Counter

import pytest

from .grounding_eval import KINDS, check, demo_policy, figures, load_cases


@pytest.fixture(scope="module")
def result():
    return figures(check(load_cases(), demo_policy()))


def test_the_set_is_large_varied_and_labelled():
    cases = load_cases()
    assert len(cases) >= 300 and len({c["id"] for c in cases}) == len(cases)
    assert len({c["domain"] for c in cases}) >= 5 and len({c["member"]["member_id"] for c in cases}) >= 30
    counts = Counter(c["kind"] for c in cases)
    assert set(counts) == {"grounded", *KINDS} and min(counts[k] for k in KINDS) >= 10
    for case in cases:
        assert case["grounded"] == (case["kind"] == "grounded")
        assert case["grounded"] or case["invented"].lower() in case["rationale"].lower()
    assert any(not c["rationale"].isascii() for c in cases) and any(not str(c["member"]).isascii() for c in cases)


def test_hallucinated_rationales_are_caught_and_grounded_ones_pass(result):
    assert result["recall"] >= 0.9, result
    assert result["false_positive_rate"] <= 0.05, result
    assert result["precision"] >= 0.95, result
    assert result["named"] >= 0.9, result


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_invented_fact_is_mostly_caught(result, kind):
    assert result["kinds"][kind]["recall"] >= 0.8, result["kinds"][kind]


def test_the_heuristic_baselines_own_rationales_all_pass():
    cases = [c for c in load_cases() if c["rationale"].startswith("Heuristic baseline (not an LLM)")]
    assert len(cases) >= 30
    assert [o.case["id"] for o in check(cases, demo_policy()) if o.flagged] == []
