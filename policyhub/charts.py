"""Charts: Vega-Lite specs built in Python, rendered in the browser by the vendored Vega-Lite (``static/vendor/vega``).

A :class:`Chart` is one figure: a Vega-Lite spec whose data is the named dataset ``table`` (inline values, so the
page's figures and the picture come from the same list) and the same numbers as a :class:`Table`, which the page
shows next to the picture for anyone who cannot read it. ``{% chart c %}`` (``policyhub/templatetags/charts.py``)
renders one through ``templates/_chart.html``: the spec goes into the page with ``json_script`` and
``static/charts.js`` embeds it (no inline script, no CDN).

The builders below are the only place specs are written; pages pass them plain figures:

* :func:`reliability_diagram` — teacher confidence against accuracy per bin, with the ECE;
* :func:`confusion_heatmap` — true label × predicted label counts;
* :func:`line_trends` — one line per series over an ordered x (policy versions, time);
* :func:`stacked_bars` — counts per category stacked on each x (labels per split, routing per minute).
"""

from dataclasses import dataclass, field

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an identifier only: nothing is fetched from it
DATA = "table"  # every chart's dataset name: the browser reads it back with view.data("table")


@dataclass(frozen=True)
class Table:
    """The chart's numbers for people: column titles and rows of display values (already formatted)."""

    columns: list[str]
    rows: list[list]


@dataclass(frozen=True)
class Chart:
    name: str  # unique on the page: the element ids are chart-<name> and chart-<name>-spec
    title: str
    description: str  # what the picture shows, in words (aria-label and caption)
    spec: dict
    table: Table
    empty: str = ""  # shown instead of the picture when there is nothing to draw ("" when there is)
    notes: list[str] = field(default_factory=list)

    @property
    def values(self) -> list[dict]:
        """The rows the picture draws (the spec's ``table`` dataset)."""
        return self.spec["data"]["values"]

    @property
    def element_id(self) -> str:
        return f"chart-{self.name}"


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _spec(values: list[dict], *, title: str, description: str, height: int = 220, **body) -> dict:
    return {
        "$schema": SCHEMA,
        "description": description,
        "title": title,
        "width": "container",
        "height": height,
        "data": {"name": DATA, "values": values},
        "config": {"view": {"stroke": None}, "axis": {"labelLimit": 160}},
        **body,
    }


def reliability_diagram(calibration, *, name: str, truth_name: str = "human", predictor: str = "teacher") -> Chart:
    """Reliability diagram of a ``labeling.metrics.Calibration``: per non-empty bin, the bin's span and the teacher's
    accuracy as a bar, its mean confidence against that accuracy as a point sized by the items, and the diagonal of
    perfect calibration. The ECE is in the title."""
    values = [
        {"low": round(b.low, 6), "high": round(b.high, 6), "items": b.n, "confidence": round(b.mean_confidence, 6),
         "accuracy": round(b.accuracy, 6), "gap": round(b.gap, 6)}
        for b in calibration.bins
        if b.n
    ]  # fmt: skip
    ece = "—" if calibration.ece is None else f"{calibration.ece:.3f}"
    title = f"Reliability: {predictor} confidence vs accuracy against {truth_name} (ECE {ece})"
    description = (
        f"Reliability diagram over {calibration.n} items in {len(calibration.bins)} equal-width confidence bins: "
        f"for each bin the {predictor}'s accuracy against the {truth_name} label, and its mean confidence; the dashed "
        f"diagonal is perfect calibration. Expected calibration error {ece}."
    )
    unit = {"type": "quantitative", "scale": {"domain": [0, 1]}}
    spec = _spec(
        values,
        title=title,
        description=description,
        height=240,
        layer=[
            {
                "data": {"values": [{"confidence": 0, "accuracy": 0}, {"confidence": 1, "accuracy": 1}]},
                "mark": {"type": "line", "strokeDash": [4, 4], "color": "#888"},
                "encoding": {"x": {"field": "confidence", **unit}, "y": {"field": "accuracy", **unit}},
            },
            {
                "mark": {"type": "bar", "opacity": 0.35, "color": "#2b6cb0"},
                "encoding": {
                    "x": {"field": "low", **unit, "title": f"{predictor.capitalize()} confidence"},
                    "x2": {"field": "high"},
                    "y": {"field": "accuracy", **unit, "title": f"{predictor.capitalize()} accuracy"},
                    "y2": {"datum": 0},
                },
            },
            {
                "mark": {"type": "point", "filled": True, "color": "#1a365d"},
                "encoding": {
                    "x": {"field": "confidence", **unit},
                    "y": {"field": "accuracy", **unit},
                    "size": {"field": "items", "type": "quantitative", "legend": None},
                    "tooltip": [
                        {"field": "low", "title": "From", "format": ".1f"},
                        {"field": "high", "title": "To", "format": ".1f"},
                        {"field": "items", "title": "Items"},
                        {"field": "confidence", "title": "Mean confidence", "format": ".3f"},
                        {"field": "accuracy", "title": "Accuracy", "format": ".3f"},
                    ],
                },
            },
        ],
    )
    table = Table(
        ["Confidence", "Items", "Mean confidence", f"{predictor.capitalize()} accuracy", "Gap"],
        [[f"{v['low']:.1f}–{v['high']:.1f}", v["items"], _fmt(v["confidence"]), _fmt(v["accuracy"]), _fmt(v["gap"])]
         for v in values],
    )  # fmt: skip
    empty = "" if values else "No confidences to calibrate."
    return Chart(name, title, description, spec, table, empty=empty)


def confusion_heatmap(accuracy, *, name: str, truth_name: str = "human", predictor: str = "teacher") -> Chart:
    """Heatmap of a ``labeling.metrics.AccuracyReport``'s confusion matrix: rows the true label, columns the
    teacher's, colour and number the items."""
    labels = accuracy.labels
    values = [
        {"truth": truth, "predicted": predicted, "items": n}
        for truth, counts in accuracy.rows
        for predicted, n in zip(labels, counts, strict=True)
    ]
    darkest = max((v["items"] for v in values), default=0)
    title = f"Confusion: {truth_name} label × {predictor} label"
    description = (
        f"Heatmap of {accuracy.n} items: each row is the {truth_name} label, each column the {predictor}'s label, the "
        "colour and the number the items with that pair of labels; the diagonal is where they agree."
    )
    axis = {"type": "nominal", "sort": labels, "axis": {"labelAngle": 0}}
    spec = _spec(
        values,
        title=title,
        description=description,
        height=max(120, 40 * len(labels)),
        encoding={
            "x": {"field": "predicted", **axis, "title": f"{predictor.capitalize()} label"},
            "y": {"field": "truth", **axis, "title": f"{truth_name.capitalize()} label"},
        },
        layer=[
            {
                "mark": "rect",
                "encoding": {
                    "color": {"field": "items", "type": "quantitative", "title": "Items",
                              "scale": {"scheme": "blues"}},
                    "tooltip": [{"field": "truth", "title": truth_name.capitalize()},
                                {"field": "predicted", "title": predictor.capitalize()},
                                {"field": "items", "title": "Items"}],
                },
            },
            {"mark": {"type": "text", "fontSize": 13},
             "encoding": {"text": {"field": "items", "type": "quantitative"},
                          # white on the darker half of the scale, so every number stays readable
                          "color": {"condition": {"test": f"datum.items > {darkest / 2}", "value": "white"},
                                    "value": "black"}}},
        ],
    )  # fmt: skip
    table = Table([f"{truth_name} \\ {predictor}", *labels], [[truth, *counts] for truth, counts in accuracy.rows])
    empty = "" if accuracy.n else f"No items with a {truth_name} label yet."
    return Chart(name, title, description, spec, table, empty=empty)


def _x_encoding(rows: list[dict], *, x: str, x_type: str, title: str) -> dict:
    """The x channel of the charts over rows (versions, splits, time buckets): an ordinal x keeps the rows' order
    (not Vega's alphabetical one, which would put v10 before v2) with level labels that may skip when they crowd."""
    encoding = {"field": "x", "type": x_type, "title": title}
    if x_type == "ordinal":
        encoding["sort"] = [row[x] for row in rows]
        encoding["axis"] = {"labelAngle": 0, "labelOverlap": True}
    return encoding


def line_trends(
    rows: list[dict],
    *,
    name: str,
    title: str,
    x: str,
    x_title: str,
    series: list[tuple[str, str]],
    y_title: str,
    x_type: str = "ordinal",
    digits: int = 3,
    y_domain: list | None = None,
    description: str = "",
) -> Chart:
    """One line per series over ``x``: ``rows`` are ``{x: …, field: value…}`` and ``series`` names the fields to draw
    as (field, title). A missing value (None) leaves a gap instead of drawing a zero."""
    values = [
        {"x": row[x], "series": label, "value": row[key]}
        for row in rows
        for key, label in series
        if row.get(key) is not None
    ]
    y_format = f".{digits}f"
    y = {"field": "value", "type": "quantitative", "title": y_title, "axis": {"format": y_format}}
    if digits == 0:  # counts: whole-number ticks only
        y["axis"]["tickMinStep"] = 1
    if y_domain is not None:
        y["scale"] = {"domain": y_domain}
    spec = _spec(
        values,
        title=title,
        description=description or title,
        mark={"type": "line", "point": True},
        encoding={
            "x": _x_encoding(rows, x=x, x_type=x_type, title=x_title),
            "y": y,
            "color": {"field": "series", "type": "nominal", "title": None, "sort": [label for _, label in series]},
            "tooltip": [{"field": "x", "title": x_title}, {"field": "series", "title": "Series"},
                        {"field": "value", "title": y_title, "format": y_format}],
        },
    )  # fmt: skip
    table = Table(
        [x_title, *[label for _, label in series]],
        [[row.get(f"{x}_label", row[x]), *[_fmt(row.get(key), digits) for key, _ in series]] for row in rows],
    )
    return Chart(name, title, description or title, spec, table, empty="" if values else "Nothing to draw yet.")


def stacked_bars(
    rows: list[dict],
    *,
    name: str,
    title: str,
    x: str,
    x_title: str,
    categories: list[tuple[str, str]],
    y_title: str,
    x_type: str = "ordinal",
    description: str = "",
) -> Chart:
    """Counts per category stacked on each ``x``: ``rows`` are ``{x: …, category field: count…}``; ``categories``
    names the fields as (field, title), bottom first. Categories must not overlap (a stack adds them up)."""
    values = [
        {"x": row[x], "category": label, "order": k, "count": row.get(key) or 0}
        for row in rows
        for k, (key, label) in enumerate(categories)
    ]
    spec = _spec(
        values,
        title=title,
        description=description or title,
        mark={"type": "bar", "tooltip": True},
        encoding={
            "x": _x_encoding(rows, x=x, x_type=x_type, title=x_title),
            "y": {"field": "count", "type": "quantitative", "stack": "zero", "title": y_title,
                  "axis": {"tickMinStep": 1}},
            "color": {"field": "category", "type": "nominal", "title": None,
                      "sort": [label for _, label in categories]},
            "order": {"field": "order", "type": "ordinal"},
            "tooltip": [{"field": "x", "title": x_title}, {"field": "category", "title": "Category"},
                        {"field": "count", "title": y_title}],
        },
    )  # fmt: skip
    table = Table(
        [x_title, *[label for _, label in categories], "Total"],
        [[row.get(f"{x}_label", row[x]), *[row.get(key) or 0 for key, _ in categories],
          sum(row.get(key) or 0 for key, _ in categories)] for row in rows],
    )  # fmt: skip
    return Chart(name, title, description or title, spec, table, empty="" if rows else "Nothing to draw yet.")
