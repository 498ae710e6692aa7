"""The figures behind the charts: a run's timeline, a version's cost per 1,000 labels, the trends page and the two
teacher-vs-gold reports of a draft preview. Each chart's data is the numbers the page states (its counters, tables
or the selector its own page uses); the browser side is tests/e2e/test_charts.py."""

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from labeling.models import Candidate, LabelingRun, TeacherSample
from labeling.selectors import run_costs, run_routing_summary, run_timeline, run_timeline_charts, runs_on_gold
from labeling.selectors.agreement import version_agreement
from labeling.selectors.costs import versions_costs
from labeling.selectors.previews import draft_preview_state
from labeling.selectors.trends import policy_trends, trend_charts
from labeling.selectors.trust_rates import version_trust_rates
from labeling.services import draft_preview_start, labeling_run_create
from policyhub import roles

from .gold_helpers import make_gold
from .test_draft_preview import draft, fake_teacher, run_chunks  # noqa: F401 - fixtures of the preview test

T0 = datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)


def spec(html: str, element_id: str) -> dict:
    """The Vega-Lite spec a page hands to static/charts.js for chart ``element_id``."""
    found = re.search(rf'<script id="{element_id}-spec" type="application/json">(.*?)</script>', html, re.S)
    assert found, f"no spec for {element_id}"
    return json.loads(found.group(1))


@pytest.fixture
def timed_run(published, openai_config, fake_openai, process_run, pairs):
    """A run over the 4 pairs: m2×j2 fails (an answer outside the label set, twice), the others are labelled; their
    answers are then dated 10:00:05, 10:01:30 and 10:20:00 (two pairs)."""

    def respond(request, call_number):
        user = request["messages"][-1]["content"]
        bad = '"member_id": "m2"' in user and '"job_id": "j2"' in user
        return {"label": "maybe" if bad else "strong_match", "rationale": "Fits.", "cited_rules": ["R1"]}

    fake_openai.responder = respond
    run = process_run(labeling_run_create(version=published, config=openai_config(), selection={"all": True}))
    at = [T0, T0 + timedelta(seconds=85), T0 + timedelta(minutes=20), T0 + timedelta(minutes=20)]
    for pair, when in zip(pairs, at, strict=True):
        TeacherSample.objects.filter(run=run, pair=pair).update(created_at=when)
    return run


def test_the_timeline_counts_each_pair_once_when_it_was_decided_and_ends_at_the_run_pages_counters(timed_run):
    timeline = run_timeline(run=timed_run)
    summary = run_routing_summary(run=timed_run)
    assert timeline.unit == "minute"  # 20 minutes of answers: per-minute buckets, 09:59 (nothing yet) to 10:20
    assert [b["at"] for b in timeline.buckets] == [
        f"{h:02d}:{m:02d}" for h, m in [(9, 59)] + [(10, m) for m in range(21)]
    ]
    decided = {b["at"]: b["auto_accepted"] + b["needs_review"] + b["failed"] for b in timeline.buckets}
    assert (decided["09:59"], decided["10:00"], decided["10:01"], decided["10:20"]) == (0, 1, 1, 2)
    assert sum(decided.values()) == 4
    last = timeline.buckets[-1]
    assert (summary["labeled"], summary["failed"]) == (3, 1)
    assert (last["labeled_total"], last["failed_total"]) == (summary["labeled"], summary["failed"])
    for key in ("auto_accepted", "needs_review", "failed"):
        assert sum(b[key] for b in timeline.buckets) == summary[key], key
    for reason, count in summary["reasons"].items():
        assert sum(b[f"reason_{reason}"] for b in timeline.buckets) == count, reason

    progress, routing, reasons = run_timeline_charts(timeline, pairs_total=timed_run.pairs_total)
    assert [v for v in progress.values if v["x"] == "10:20"] == [
        {"x": "10:20", "series": "labelled", "value": 3}, {"x": "10:20", "series": "failed", "value": 1},
    ]  # fmt: skip
    assert progress.spec["encoding"]["y"]["scale"]["domain"] == [0, 4]
    assert sum(v["count"] for v in routing.values) == 4
    assert {v["category"] for v in routing.values} == {"auto-accepted", "needs review", "failed"}
    assert sum(v["value"] for v in reasons.values) == sum(summary["reasons"].values())


def test_the_run_page_shows_the_timeline_and_refreshes_it_on_its_own(timed_run, engineer, client_for):
    client = client_for(engineer)
    html = client.get(f"/runs/{timed_run.pk}/").content.decode()
    progress = spec(html, "chart-run-progress")
    assert progress["data"]["name"] == "table" and progress["data"]["values"][-1]["value"] == 1  # failed so far
    assert 'id="chart-run-progress-table"' in html  # its numbers as a table
    part = client.get(f"/runs/{timed_run.pk}/?part=timeline", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in part and 'id="run-timeline"' in part
    assert spec(part, "chart-run-routing") == spec(html, "chart-run-routing")
    assert "hx-trigger" not in part.split(">")[0]  # the run has ended: no more refreshing


def test_a_run_without_answers_has_no_timeline(published, make_config, pairs):
    run = labeling_run_create(version=published, config=make_config("h", provider="heuristic"), selection={"all": True})
    assert run_timeline(run=run).buckets == [] and run_timeline_charts(run_timeline(run=run), pairs_total=4) == []


def test_a_versions_cost_per_1000_labels_is_its_labeling_runs_cost_over_their_labelled_pairs(
    published, make_config, process_run, pairs
):
    config = make_config("h", provider="heuristic")
    first = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    LabelingRun.objects.filter(pk=first.pk).update(cost=Decimal("0.012"), judge_cost=Decimal("0.001"))
    first.refresh_from_db()
    assert (
        versions_costs(version_ids=[published.pk])[published.pk].per_1000_pairs == run_costs(run=first).per_1000_pairs
    )
    assert run_costs(run=first).per_1000_pairs == Decimal("3.2500")  # 0.013 × 1000 / 4

    second = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    LabelingRun.objects.filter(pk=second.pk).update(cost=Decimal("0.003"))
    Candidate.objects.filter(run=second, pair=pairs[0]).update(label="")  # one pair without a teacher label
    costs = versions_costs(version_ids=[published.pk])[published.pk]
    assert (costs.cost, costs.labelled_pairs, costs.per_1000_pairs) == (Decimal("0.016"), 7, Decimal("2.2857"))


def test_the_trends_are_what_each_versions_own_pages_state(
    policy, published, make_config, process_run, pairs, owner, review_items, make_user
):
    config = make_config("h", provider="heuristic")
    run = process_run(labeling_run_create(version=published, config=config, selection={"all": True}))
    LabelingRun.objects.filter(pk=run.pk).update(cost=Decimal("0.02"))
    labels = dict(Candidate.objects.filter(run=run).values_list("pair__member__external_id", "label"))
    make_gold(policy, {("m1", "j1"): labels["m1"], ("m2", "j1"): "partial_match"}, user=owner)
    queued = review_items(2)  # two items humans label: one as the teacher did, one not
    annotator = make_user("ana", roles.ANNOTATOR)
    from .gold_helpers import approve_all

    teacher = dict(Candidate.objects.filter(run=queued).values_list("pair__member__external_id", "label"))
    approve_all(queued, annotator, {"r0": teacher["r0"], "r1": "partial_match" if teacher["r1"] != "partial_match"
                                    else "no_match"})  # fmt: skip

    (trend,) = policy_trends(policy=policy)  # v2 is a draft: not a released version
    gold = [s for s in runs_on_gold(policy=policy) if s.run.policy_version_id == published.pk]
    assert (trend.gold_items, trend.gold_correct) == (sum(s.n for s in gold), sum(s.correct for s in gold))
    assert trend.gold_items == 2 and trend.gold_accuracy == trend.gold_correct / 2
    agreement = version_agreement(version=published)
    assert (trend.human_items, trend.human_accuracy, trend.alpha) == (2, 0.5, agreement.alpha)
    assert trend.trust.counts == version_trust_rates(version=published).total.counts
    assert trend.costs.per_1000_pairs == Decimal("3.3333")  # 0.02 × 1000 / 6 labelled pairs of the two runs

    accuracy, trust, cost = trend_charts([trend])
    assert {v["series"]: v["value"] for v in accuracy.values} == {
        "accuracy on gold": trend.gold_accuracy,
        "teacher vs humans": 0.5,
    }  # fmt: skip  (α is undefined with one annotator: a gap, not a zero)
    assert {v["series"]: v["value"] for v in trust.values}["hallucination"] == trend.trust.hallucination.rate
    assert "judge said no" not in {v["series"] for v in trust.values}
    assert cost.values == [{"x": "v1", "series": "cost per 1,000 labelled pairs ($)", "value": 3.3333}]


def test_the_trends_page_states_the_figures_its_charts_draw_and_checks_the_role(
    policy, published, make_config, process_run, pairs, engineer, annotator, client_for, client
):
    run = process_run(labeling_run_create(version=published, config=make_config("h", provider="heuristic"),
                                          selection={"all": True}))  # fmt: skip
    LabelingRun.objects.filter(pk=run.pk).update(cost=Decimal("0.01"))
    page = client_for(engineer).get("/policies/match/trends/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<td data-value="cost_per_1000">$2.5000 <span class="muted">(4 pairs)</span></td>' in html
    assert spec(html, "chart-trend-cost")["data"]["values"] == [
        {"x": "v1", "series": "cost per 1,000 labelled pairs ($)", "value": 2.5}
    ]
    assert 'href="/policies/match/trends/"' in client_for(engineer).get("/policies/match/").content.decode()
    assert client_for(annotator).get("/policies/match/trends/").status_code == 403
    client.logout()
    assert client.get("/policies/match/trends/")["Location"].startswith("/login/")


def test_a_draft_preview_draws_both_reports_under_their_own_ids(
    draft,  # noqa: F811
    owner,
    openai_config,
    fake_teacher,  # noqa: F811
    client_for,
):
    preview = draft_preview_start(user=owner, draft=draft, config=openai_config())
    run_chunks(preview)
    state = draft_preview_state(preview=preview, target_precision=0.95)
    html = client_for(owner).get(f"/policies/match/draft/gold-preview/{preview.pk}/").content.decode()
    for prefix, report in (("draft", state.draft_evaluation), ("published", state.published_evaluation)):
        drawn = {
            (v["truth"], v["predicted"]): v["items"] for v in spec(html, f"chart-{prefix}-confusion")["data"]["values"]
        }
        assert drawn == {
            (truth, predicted): n
            for truth, row in report.accuracy.rows
            for predicted, n in zip(report.accuracy.labels, row)
        }
        reliability = spec(html, f"chart-{prefix}-reliability")
        assert [v["items"] for v in reliability["data"]["values"]] == [b.n for b in report.calibration.bins if b.n]
        assert f"(ECE {report.calibration.ece:.3f})" in reliability["title"]
    assert (
        sum(v["items"] for v in spec(html, "chart-draft-confusion")["data"]["values"] if v["truth"] == v["predicted"])
        == 3
    )
