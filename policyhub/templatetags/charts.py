"""``{% load charts %}``: one figure per tag, through ``templates/_chart.html`` (see ``policyhub.charts``).

* ``{% chart c %}`` renders a :class:`policyhub.charts.Chart` built by a view or selector, with its data table in a
  ``<details>`` under the picture (``table=False`` when the page already shows the same numbers as a table);
* ``{% reliability_chart calibration name=… truth_name=… %}`` and ``{% confusion_chart accuracy name=… %}`` build the
  two teacher-vs-truth figures from a ``labeling.evaluation.EvaluationReport``'s parts, for the shared partial
  ``labeling/_evaluation.html``.
"""

from django import template
from django.template.loader import render_to_string

from policyhub import charts

register = template.Library()


@register.simple_tag
def chart(chart: charts.Chart, table: bool = True):
    return render_to_string("_chart.html", {"chart": chart, "show_table": table})


@register.simple_tag
def reliability_chart(calibration, *, name: str, truth_name: str = "human", predictor: str = "teacher", table=False):
    return chart(charts.reliability_diagram(calibration, name=name, truth_name=truth_name, predictor=predictor), table)


@register.simple_tag
def confusion_chart(accuracy, *, name: str, truth_name: str = "human", predictor: str = "teacher", table=False):
    return chart(charts.confusion_heatmap(accuracy, name=name, truth_name=truth_name, predictor=predictor), table)
