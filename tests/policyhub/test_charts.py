"""The spec builders (policyhub/charts.py): the picture's data is exactly the figures given, in the table too."""

import json

from django.template import Context, Template

from labeling.metrics import Judged, accuracy_report, calibration
from policyhub import charts

ITEMS = [  # teacher label, truth, confidence
    Judged("yes", "yes", 0.95), Judged("yes", "no", 0.9), Judged("no", "no", 0.55), Judged("yes", "yes", 0.62),
    Judged("no", "yes", 0.15),
]  # fmt: skip


def test_the_reliability_diagram_draws_each_non_empty_bin_and_names_the_ece():
    cal = calibration(ITEMS)
    chart = charts.reliability_diagram(cal, name="r", truth_name="gold")
    assert [(v["low"], v["items"], v["accuracy"]) for v in chart.values] == [
        (0.1, 1, 0.0), (0.5, 1, 1.0), (0.6, 1, 1.0), (0.9, 2, 0.5),
    ]  # fmt: skip
    assert [v["confidence"] for v in chart.values] == [0.15, 0.55, 0.62, 0.925]
    assert f"ECE {cal.ece:.3f}" in chart.title and chart.spec["data"]["name"] == "table"
    assert chart.table.rows[-1] == ["0.9–1.0", 2, "0.925", "0.500", "0.425"]
    assert chart.empty == ""


def test_a_reliability_diagram_without_confidences_says_so():
    chart = charts.reliability_diagram(calibration([Judged("yes", "no")]), name="r")
    assert chart.values == [] and chart.empty == "No confidences to calibrate."


def test_the_confusion_heatmap_holds_every_cell_of_the_matrix():
    report = accuracy_report(ITEMS, ["yes", "no"])
    chart = charts.confusion_heatmap(report, name="c", truth_name="gold")
    cells = {(v["truth"], v["predicted"]): v["items"] for v in chart.values}
    assert cells == {("yes", "yes"): 2, ("yes", "no"): 1, ("no", "yes"): 1, ("no", "no"): 1}
    assert chart.spec["encoding"]["x"]["sort"] == ["yes", "no"]
    assert chart.table.rows == [["yes", 2, 1], ["no", 1, 1]]


def test_line_trends_leave_a_gap_for_a_missing_value_and_stacked_bars_total_each_bar():
    rows = [{"v": "v1", "a": 0.5, "b": None}, {"v": "v2", "a": 0.75, "b": 0.1}]
    lines = charts.line_trends(rows, name="l", title="T", x="v", x_title="Version", series=[("a", "A"), ("b", "B")],
                               y_title="Share")  # fmt: skip
    assert lines.values == [
        {"x": "v1", "series": "A", "value": 0.5}, {"x": "v2", "series": "A", "value": 0.75},
        {"x": "v2", "series": "B", "value": 0.1},
    ]  # fmt: skip
    assert lines.table.rows == [["v1", "0.500", "—"], ["v2", "0.750", "0.100"]]
    bars = charts.stacked_bars([{"s": "train", "x": 3, "y": 1}, {"s": "test", "x": 0, "y": 2}], name="b", title="T",
                               x="s", x_title="Split", categories=[("x", "X"), ("y", "Y")], y_title="Rows")  # fmt: skip
    assert [(v["x"], v["category"], v["count"]) for v in bars.values] == [
        ("train", "X", 3), ("train", "Y", 1), ("test", "X", 0), ("test", "Y", 2),
    ]  # fmt: skip
    assert bars.table.rows == [["train", 3, 1, 4], ["test", 0, 2, 2]]


def test_the_tag_puts_the_spec_in_a_json_script_and_escapes_user_text():
    rows = [{"s": "<b>train</b>", "n": 1}]
    chart = charts.stacked_bars(rows, name="esc", title="T", x="s", x_title="Split", categories=[("n", "</script>")],
                                y_title="Rows")  # fmt: skip
    html = Template("{% load charts %}{% chart c %}").render(Context({"c": chart}))
    assert 'id="chart-esc" data-vega-spec="chart-esc-spec"' in html
    assert "<b>train</b>" not in html and "&lt;b&gt;train&lt;/b&gt;" in html  # the table, escaped
    spec_text = html.split('<script id="chart-esc-spec" type="application/json">')[1].split("</script>")[0]
    assert json.loads(spec_text) == chart.spec  # json_script escapes < > & inside the JSON
    assert "<script>" not in html.replace('<script id="chart-esc-spec" type="application/json">', "")
