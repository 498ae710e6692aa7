"""A run with a judge: every answer goes, with its pair and cited rules, to a second teacher config through the
real openai client at the fake server, whose verdict is the judge_verdict trust check. An honest judge flags the
answers that invent facts and passes the clean ones; a misbehaving judge (malformed verdicts, rate limits) is
retried, and what stays unreadable fails the check with a clear detail; verdicts are cached, so a rerun pays
nothing; the judge's tokens and cost are counted apart from the teacher's; a run without a judge asks nothing."""

from decimal import Decimal

from labeling.models import Candidate, TeacherSample
from labeling.services import labeling_run_create
from labeling.teacher.verdicts import SCHEMA_NAME
from tests.fakes.openai_server import InventingResponder, MisbehavingJudge, is_judge_request

from .conftest import answer

PRICES = {"price_input_per_mtok": Decimal("1.5"), "price_output_per_mtok": Decimal("6")}


def _run(published, teacher, judge, **options):
    return labeling_run_create(version=published, config=teacher, selection={"all": True}, judge=judge, **options)


def test_an_honest_judge_flags_invented_claims_and_passes_clean_answers(
    pairs, published, openai_config, fake_openai, process_run
):
    inventing = InventingResponder(answer("strong_match", rationale="The profile fits the posting."), fraction=0.15)
    fake_openai.responder = inventing
    teacher = openai_config(samples_per_pair=3, **PRICES)
    judge = openai_config("judge", model="fake-judge", price_input_per_mtok=Decimal("3"))
    run = process_run(_run(published, teacher, judge))
    assert run.status == "succeeded"

    invented: dict[int, set[str]] = {}
    for sample in TeacherSample.objects.filter(run=run):
        assert sample.judge is not None and sample.judge["error"] == ""
        if sample.rationale in inventing.invented:
            invented.setdefault(sample.pair_id, set()).add(sample.rationale.split(". ", 1)[1])
    assert 0 < len(invented) < len(pairs)
    for candidate in Candidate.objects.filter(run=run):
        verdict = candidate.trust["judge_verdict"]
        if candidate.pair_id in invented:
            assert verdict["ok"] is False and verdict["detail"].startswith("unsupported claims: ")
            assert all(sentence in verdict["detail"] for sentence in invented[candidate.pair_id]), verdict["detail"]
            assert candidate.routing == "needs_review" and "trust_check_failed" in candidate.reasons
            assert (candidate.review_state, candidate.approved_by) == ("pending", "")
        else:
            assert verdict == {"ok": True, "detail": ""}
            assert (candidate.routing, candidate.approved_label) == ("auto_accepted", "strong_match")

    # one judge request per distinct answer (K identical answers are judged once), each with the pair and the
    # answer it judges, at the judge's model
    judged = fake_openai.judge_requests()
    distinct = {(s.pair_id, s.rationale) for s in TeacherSample.objects.filter(run=run)}
    assert len(distinct) < 12 and len(judged) == len(distinct)
    assert (run.samples_done, run.judge_requests, run.judge_cached) == (12, 12, 12 - len(distinct))
    assert {body["model"] for body in judged} == {"fake-judge"}
    assert all(body["response_format"]["json_schema"]["name"] == SCHEMA_NAME for body in judged)
    assert all("<member>" in body["messages"][1]["content"] and "<answer>" in body["messages"][1]["content"]
               for body in judged)  # fmt: skip
    # the judge's tokens and cost are counted apart from the teacher's, at the judge's prices
    teacher_bodies = [body for body in fake_openai.requests if not is_judge_request(body)]
    assert [body["n"] for body in teacher_bodies] == [3] * 4  # the K = 3 samples of a pair in one request
    samples = list(TeacherSample.objects.filter(run=run))
    assert run.input_tokens == sum(s.input_tokens for s in samples)
    paid = [s.judge for s in samples if not s.judge["cached"]]
    assert len(paid) == len(distinct)
    assert run.judge_input_tokens == sum(v["input_tokens"] for v in paid) > 0
    assert run.judge_output_tokens == sum(v["output_tokens"] for v in paid) > 0
    assert run.judge_cost == Decimal(run.judge_input_tokens) * 3 / 1_000_000
    assert run.cost == (Decimal(run.input_tokens) * Decimal("1.5") + Decimal(run.output_tokens) * 6) / 1_000_000


def test_an_answer_inconsistent_with_its_cited_rules_fails_the_verdict(
    pairs, published, openai_config, fake_openai, process_run, annotator, client_for
):
    fake_openai.responder = answer("no_match", rationale="R2 rules it out: the seniority is too far apart.")
    run = process_run(_run(published, openai_config(), openai_config("judge")))
    for candidate in Candidate.objects.filter(run=run):
        detail = "inconsistent with the cited rules: the rationale relies on R2, which it does not cite"
        assert candidate.trust["judge_verdict"] == {"ok": False, "detail": detail}
        assert candidate.routing == "needs_review" and candidate.approved_label == ""
    # the annotator reviewing it sees why
    page = client_for(annotator).get("/review/").content.decode()
    assert f"<strong>judge_verdict</strong> failed: {detail}" in page


def test_malformed_verdicts_are_retried_then_fail_the_check_with_a_clear_detail(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.responder = answer("strong_match")
    fake_openai.judge = MisbehavingJudge()
    run = process_run(_run(published, openai_config(), openai_config("judge")))
    assert run.status == "succeeded" and run.samples_done == len(pairs)  # the chunk did not crash
    assert fake_openai.judge.calls == 2 * len(pairs)  # every malformed verdict is asked again once
    assert run.judge_failed == len(pairs) and run.judge_requests == len(pairs)
    for candidate in Candidate.objects.filter(run=run):
        verdict = candidate.trust["judge_verdict"]
        assert verdict["ok"] is False
        assert verdict["detail"].startswith("the judge's reply could not be used after 2 attempts (malformed_verdict: ")
        assert verdict["detail"].endswith("an unjudged answer is not trusted")
        assert candidate.routing == "needs_review" and "trust_check_failed" in candidate.reasons
    # the other checks still ran and passed: only the judge failed
    assert all(ok for name, ok in _checks(run) if name != "judge_verdict")
    # nothing unreadable was cached: a rerun asks the judge again
    rerun = process_run(_run(published, openai_config("teacher-again"), openai_config("judge-again")))
    assert rerun.judge_cached == 0 and fake_openai.judge.calls == 4 * len(pairs)


def test_rate_limited_and_cut_verdicts_are_retried_and_then_judged(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.responder = answer("strong_match")
    fake_openai.fail_next("429", 2, retry_after=0, judge=True)
    fake_openai.fail_next("malformed_json", 1, judge=True)
    run = process_run(_run(published, openai_config(), openai_config("judge")))
    assert fake_openai.pending_faults(judge=True) == [] and fake_openai.pending_faults() == []
    assert len(fake_openai.judge_requests()) == len(pairs) + 3
    assert run.judge_failed == 0
    assert [c.trust["judge_verdict"] for c in Candidate.objects.filter(run=run)] == [{"ok": True, "detail": ""}] * 4
    assert Candidate.objects.filter(run=run, routing="auto_accepted").count() == len(pairs)


def test_a_rerun_with_the_same_inputs_pays_the_judge_nothing(pairs, published, openai_config, fake_openai, process_run):
    fake_openai.responder = InventingResponder(answer("strong_match"), fraction=0.5)
    teacher, judge = openai_config(**PRICES), openai_config("judge", **PRICES)
    first = process_run(_run(published, teacher, judge))
    asked = len(fake_openai.requests)
    second = process_run(_run(published, teacher, judge))
    assert len(fake_openai.requests) == asked  # neither the teacher nor the judge was asked again
    assert (second.judge_requests, second.judge_cached, second.judge_cost) == (len(pairs), len(pairs), 0)
    assert second.judge_input_tokens == 0 and second.cost == 0 and first.judge_cost > 0
    verdicts = {c.pair_id: c.trust["judge_verdict"] for c in Candidate.objects.filter(run=first)}
    assert {c.pair_id: c.trust["judge_verdict"] for c in Candidate.objects.filter(run=second)} == verdicts
    assert any(not v["ok"] for v in verdicts.values())


def test_a_run_without_a_judge_asks_no_judge_and_has_no_judge_check(
    pairs, published, openai_config, fake_openai, process_run
):
    fake_openai.responder = answer("strong_match")
    run = process_run(labeling_run_create(version=published, config=openai_config(), selection={"all": True}))
    assert fake_openai.judge_requests() == [] and len(fake_openai.requests) == len(pairs)
    assert all("judge_verdict" not in c.trust for c in Candidate.objects.filter(run=run))
    assert TeacherSample.objects.filter(run=run, judge__isnull=False).count() == 0
    assert (run.judge_requests, run.judge_cost, run.judge_config) == (0, 0, None)


def _checks(run):
    for candidate in Candidate.objects.filter(run=run):
        for name, result in candidate.trust.items():
            yield name, result["ok"]


def test_a_judge_that_cannot_be_reached_fails_the_run_with_its_reason(
    pairs, published, openai_config, fake_openai, process_run
):
    judge = openai_config("judge", api_key_name="judgekey")  # a key name the workers do not have
    run = process_run(_run(published, openai_config(), judge))
    assert run.status == "failed"
    assert run.error == "The judge cannot be used: API key judgekey is not configured on the workers."
    assert fake_openai.requests == [] and not TeacherSample.objects.filter(run=run).exists()
