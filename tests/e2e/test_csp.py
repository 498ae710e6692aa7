# ruff: noqa: F811 - fixtures imported from the chart tests and the exports' conftest are parameters of the tests
"""The Content-Security-Policy in the browser: Chromium enforces it (code compiled from a string is refused, so a
chart drawn the default way, with Vega's generated code, fails), and under it the charts drawn with Vega's
expression interpreter render with no CSP violation, as do the draft editor's and the export page's scripts."""

import pytest
from playwright.sync_api import expect

from policyhub import roles
from tests.e2e.test_charts import chart_data, no_errors, watched  # noqa: F401
from tests.exports.conftest import export_run  # noqa: F401
from tests.labeling.conftest import (  # noqa: F401
    do_import,
    fake_openai,
    make_config,
    members_and_jobs,
    openai_config,
    pairs,
    process_run,
    published,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

VIOLATIONS = """(() => {
  window.cspViolations = [];
  document.addEventListener("securitypolicyviolation", e => window.cspViolations.push(e.violatedDirective));
})();"""
#: In a later task of the page (DevTools' own evaluation is exempt from the policy): code compiled from a string,
#: and vega-embed as it would be called without the interpreter (Vega compiles its expressions with Function).
MISBEHAVE = """name => setTimeout(() => {
  try { window.evalResult = String(new Function("return 1")()); } catch (e) { window.evalResult = e.name; }
  const element = document.createElement("div");
  document.body.appendChild(element);
  const holder = document.getElementById(document.getElementById("chart-" + name).dataset.vegaSpec);
  vegaEmbed(element, JSON.parse(holder.textContent), {mode: "vega-lite", renderer: "svg", actions: false})
    .then(() => { window.embedResult = "rendered"; }, error => { window.embedResult = String(error); });
}, 0)"""


def test_the_policy_refuses_eval_and_charts_render_with_the_interpreter_without_violations(
    export_run, watched, login, make_user
):
    page = watched
    page.add_init_script(VIOLATIONS)
    login(make_user("mila", roles.ML_ENGINEER))
    response = page.goto(f"/runs/{export_run.pk}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]

    assert chart_data(page, "run-progress")  # drawn, with its data, under the policy
    assert chart_data(page, "run-routing")
    assert page.evaluate("() => window.cspViolations") == []
    no_errors(page)

    # things misbehaving: code from a string is refused, and so is a chart drawn without the interpreter
    page.evaluate(MISBEHAVE, "run-progress")
    page.wait_for_function("() => window.evalResult && window.embedResult")
    assert page.evaluate("() => window.evalResult") == "EvalError"
    failed = page.evaluate("() => window.embedResult")
    assert failed != "rendered" and "unsafe-eval" in failed, failed
    assert "script-src" in page.evaluate("() => window.cspViolations")


def test_the_draft_editor_adds_rows_from_its_static_script_under_the_policy(published, owner, watched, login):
    page = watched
    page.add_init_script(VIOLATIONS)
    login(owner)
    page.goto("/policies/match/draft/")
    rows = page.locator("#rule-rows > *")
    before = rows.count()
    page.get_by_role("button", name="Add rule").click()
    expect(rows).to_have_count(before + 1)
    assert page.evaluate("() => window.cspViolations") == []
    no_errors(page)
