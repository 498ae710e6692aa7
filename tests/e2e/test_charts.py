"""Charts in the browser: each page's pictures are drawn (an SVG appears, no console errors) and the data the drawn
Vega view holds (``element.vegaView.data("table")``) is the figures the page states in its tables and counters.

Data: the exports' fixture run (a heuristic run over 60 pairs, processed in-process; three items human-approved),
plus gold labels on some of its pairs; and the draft preview test's preview, labelled in-process by the fake
OpenAI server."""

import re

import pytest
from playwright.sync_api import expect

from exports.services import export_build, export_create
from labeling.models import Candidate
from labeling.services import draft_preview_start
from policyhub import roles
from tests.celery_worker import purge_queue
from tests.exports.conftest import export_run  # noqa: F401 - the run these pages show
from tests.labeling.conftest import (  # noqa: F401 - fixtures the exports' run and the preview build on
    do_import,
    fake_openai,
    make_config,
    members_and_jobs,
    openai_config,
    pairs,
    process_run,
    published,
)
from tests.labeling.gold_helpers import make_gold
from tests.labeling.test_draft_preview import draft, fake_teacher, run_chunks  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def watched(page):
    """The page, with console errors collected next to its JavaScript errors (but the browser's own request for a
    /favicon.ico the app does not have)."""
    page.console_errors = []

    def collect(message):
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            page.console_errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", collect)
    return page


def chart_data(page, name: str, *, visible: bool = True) -> list[dict]:
    """Wait for chart ``name`` to be drawn as an SVG (seen, unless it is in a closed <details>) and return the rows
    its Vega view draws."""
    element = page.locator(f"#chart-{name}")
    expect(element).to_have_attribute("data-chart-state", "rendered")
    svg = element.locator("svg.marks")
    expect(svg).to_be_visible() if visible else expect(svg).to_be_attached()
    return page.evaluate("name => document.getElementById('chart-' + name).vegaView.data('table')", name)


def cells(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => [...r.children].map(c => c.textContent.trim()))"
    )


def no_errors(page):
    assert page.js_errors == [] and page.console_errors == [], (page.js_errors, page.console_errors)


def test_agreement_and_gold_pages_draw_the_confusion_matrix_and_reliability_they_state(
    export_run,  # noqa: F811
    watched,
    login,
    owner,
):
    page = watched
    human = list(Candidate.objects.filter(run=export_run).human_approved().select_related("pair__member", "pair__job"))
    assert len(human) == 3
    # gold on 10 pairs: the 3 humans decided, as they decided, and 7 others as the teacher's label but one
    others = list(Candidate.objects.filter(run=export_run).exclude(pk__in=[c.pk for c in human]).order_by("id")[:7])
    gold = {(c.pair.member.external_id, c.pair.job.external_id): c.approved_label for c in human}
    for k, c in enumerate(others):
        c.pair.refresh_from_db()
        label = c.label if k else ("no_match" if c.label != "no_match" else "strong_match")
        gold[c.pair.member.external_id, c.pair.job.external_id] = label
    make_gold(export_run.policy_version.policy, gold, user=owner)
    purge_queue()
    login(owner)

    for url, prefix in ((f"/runs/{export_run.pk}/agreement/", "human"),
                        (f"/policies/match/gold/score/{export_run.pk}/", "gold")):  # fmt: skip
        page.goto(url)
        confusion = chart_data(page, f"{prefix}-confusion")
        labels = page.eval_on_selector_all("table.confusion thead th.mono", "ths => ths.map(t => t.textContent)")
        stated = {(row[0], labels[k]): int(n) for row in cells(page, "table.confusion") for k, n in enumerate(row[1:])}
        assert {(v["truth"], v["predicted"]): v["items"] for v in confusion} == stated
        assert sum(stated.values()) == (3 if prefix == "human" else 10)

        reliability = chart_data(page, f"{prefix}-reliability")
        table = cells(page, '[data-metric="calibration"] table')
        assert [[f"{v['low']:.1f}–{v['high']:.1f}", str(v["items"]), f"{v['confidence']:.3f}", f"{v['accuracy']:.3f}"]
                for v in reliability] == [row[:4] for row in table]  # fmt: skip
        ece = page.locator('[data-value="ece"]').text_content()
        expect(page.locator(f"#chart-{prefix}-reliability svg").first).to_contain_text(f"ECE {ece}")
        no_errors(page)


def test_run_page_draws_progress_and_routing_over_time_as_its_counters_state(export_run, watched, login, make_user):  # noqa: F811
    page = watched
    purge_queue()
    login(make_user("mila", roles.ML_ENGINEER))
    page.goto(f"/runs/{export_run.pk}/")
    progress = chart_data(page, "run-progress")
    last = progress[-1]["x"]
    final = {v["series"]: v["value"] for v in progress if v["x"] == last}
    auto, review = int(page.text_content("#count-auto")), int(page.text_content("#count-review"))
    assert final == {"labelled": auto + review, "failed": 0} and auto + review == 60

    routing = chart_data(page, "run-routing")
    totals = {}
    for v in routing:
        totals[v["category"]] = totals.get(v["category"], 0) + v["count"]
    assert totals == {"auto-accepted": auto, "needs review": review, "failed": 0}

    reasons = chart_data(page, "run-reasons")
    for reason in ("low_confidence", "self_disagreement", "trust_check_failed"):
        drawn = sum(v["value"] for v in reasons if v["series"] == reason)
        assert drawn == int(page.text_content(f'[data-reason="{reason}"] .reason-count')), reason
    # the accessible table under the progress chart ends at the same totals
    page.locator("#chart-run-progress-figure summary").click()
    assert cells(page, "#chart-run-progress-table")[-1][1:] == [str(auto + review), "0"]
    no_errors(page)


def test_export_page_draws_labels_per_split_and_trends_page_the_versions_figures(
    export_run,  # noqa: F811
    watched,
    login,
    make_user,
    owner,
):
    page = watched
    engineer = make_user("mila", roles.ML_ENGINEER)
    export, _ = export_create(user=engineer, version=export_run.policy_version, runs=[export_run],
                              split={"train": 0.6, "validation": 0.2, "test": 0.2, "seed": 3})  # fmt: skip
    purge_queue()
    export = export_build(export_id=export.pk)
    assert export.status == "ready"
    login(engineer)
    page.goto(f"/exports/{export.pk}/")
    bars = chart_data(page, "export-splits")
    card = cells(page, "#dataset-card > table:first-of-type")  # split table: split, rows, one column per label
    labels = export_run.policy_version.label_keys
    assert {(v["x"], v["category"]): v["count"] for v in bars} == {
        (row[0], label): int(n) for row in card for label, n in zip(labels, row[2:], strict=True)
    }
    assert sum(v["count"] for v in bars) == export.manifest["rows"]
    no_errors(page)

    page.goto("/policies/match/")
    page.get_by_role("link", name="Trends by version").click()
    expect(page).to_have_url(re.compile(r"/policies/match/trends/$"))
    row = page.locator('#trends tr[data-version="1"]')
    accuracy = {v["series"]: v["value"] for v in chart_data(page, "trend-accuracy") if v["x"] == "v1"}
    human = row.locator('[data-value="human_accuracy"]').text_content().split()[0]
    assert f"{accuracy['teacher vs humans']:.3f}" == human
    assert "accuracy on gold" not in accuracy and row.locator('[data-value="gold_accuracy"]').text_content() == "—"
    trust = {v["series"]: v["value"] for v in chart_data(page, "trend-trust") if v["x"] == "v1"}
    assert f"{trust['hallucination']:.3f}" == row.locator('[data-value="hallucination"]').text_content().split()[0]
    assert "judge said no" not in trust  # no judge ran: a gap, not a zero
    cost = chart_data(page, "trend-cost")
    assert cost == [{"x": "v1", "series": "cost per 1,000 labelled pairs ($)", "value": 0.0}]
    assert row.locator('[data-value="cost_per_1000"]').text_content().startswith("$0.0000")
    no_errors(page)


def test_draft_preview_draws_both_reports_and_the_hidden_one_fills_its_width_when_opened(
    draft,  # noqa: F811
    fake_teacher,  # noqa: F811
    openai_config,  # noqa: F811
    owner,
    watched,
    login,
):
    page = watched
    preview = draft_preview_start(user=owner, draft=draft, config=openai_config())
    run_chunks(preview)
    purge_queue()
    login(owner)
    page.goto(f"/policies/match/draft/gold-preview/{preview.pk}/")
    expect(page.locator("#preview-status")).to_have_text("Done")
    draft_cells = {(v["truth"], v["predicted"]): v["items"] for v in chart_data(page, "draft-confusion")}
    assert sum(n for (truth, predicted), n in draft_cells.items() if truth == predicted) == 3  # 0.750 (3 of 4)
    expect(page.locator("#draft-accuracy")).to_contain_text("0.750 (3 of 4)")
    hidden = chart_data(page, "published-confusion", visible=False)  # drawn while its <details> is closed
    assert sum(v["items"] for v in hidden if v["truth"] == v["predicted"]) == 2  # 0.500 (2 of 4)
    page.get_by_text("Published v1 vs gold").click()
    width = "id => document.querySelector('#chart-' + id + ' svg').getBoundingClientRect().width"
    page.wait_for_function(f"({width})('published-reliability') > 300")
    assert page.evaluate(width, "published-reliability") == pytest.approx(
        page.evaluate(width, "draft-reliability"), abs=2
    )
    no_errors(page)
