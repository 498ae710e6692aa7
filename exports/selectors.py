"""Reads of the exports app."""

from django.db import connection
from django.db.models import Q, QuerySet

from policyhub import charts

from . import selection
from .models import DatasetExport


def export_list(*, policy_slug: str = "", status: str = "", limit: int = 100) -> QuerySet[DatasetExport]:
    qs = DatasetExport.objects.select_related("policy_version__policy", "created_by").prefetch_related("runs")
    if policy_slug:
        qs = qs.filter(policy_version__policy__slug=policy_slug)
    if status:
        qs = qs.filter(status=status)
    return qs[:limit]


def export_get(*, pk: int) -> DatasetExport:
    return DatasetExport.objects.select_related("policy_version__policy", "created_by", "deleted_by").get(pk=pk)


def export_latest(*, policy_slug: str) -> DatasetExport | None:
    """The most recent ready export of a policy (any version)."""
    return export_list(policy_slug=policy_slug, status=DatasetExport.Status.READY).first()


def exports_holding(*, candidate, since) -> list[DatasetExport]:
    """Exports that hold ``candidate`` as it was at ``since`` or later: built (ready, or deleted since) from its
    run after ``since`` with ``candidate`` as its pair's row, and those being built from its run now (they may).

    The row is checked by running the export's own selection for that one pair now. While the review stands its
    item only moves on towards approval, so an export that selected it then selects it still; the rare item that
    qualifies only since (say, approved by a later reviewer) errs on the side of keeping the review."""
    Status = DatasetExport.Status
    exports = (
        DatasetExport.objects.filter(runs=candidate.run_id)
        .filter(Q(status=Status.BUILDING) | Q(status__in=(Status.READY, Status.DELETED), finished_at__gte=since))
        .select_related("policy_version")
        .order_by("pk")
    )
    holding = []
    for export in exports:
        if export.status == Status.BUILDING or _holds(export, candidate):
            holding.append(export)
    return holding


def _holds(export: DatasetExport, candidate) -> bool:
    run_ids = list(export.runs.order_by("pk").values_list("pk", flat=True))
    filters = selection.Filters.from_dict(export.filters)
    query = selection.pair_row_query(export.policy_version, run_ids, filters, pair_id=candidate.pair_id)
    with connection.cursor() as cursor:
        cursor.execute(query.sql, query.params)
        row = cursor.fetchone()
    return row is not None and row[0] == candidate.run_id


def export_split_chart(*, export: DatasetExport) -> charts.Chart | None:
    """The export page's chart: labels per split, stacked, from the manifest's counts (the numbers the dataset card
    states); None before the export is built."""
    counts = export.manifest.get("counts", {}).get("by_split_label")
    if not counts:
        return None
    labels = list(export.manifest["policy"]["labels"])
    labels += sorted({label for per in counts.values() for label in per} - set(labels))
    rows = [{"split": split, **{f"n{k}": per.get(label, 0) for k, label in enumerate(labels)}}
            for split, per in counts.items()]  # fmt: skip
    return charts.stacked_bars(
        rows, name="export-splits", title="Labels per split", x="split", x_title="Split", y_title="Rows",
        categories=[(f"n{k}", label) for k, label in enumerate(labels)],
        description=f"Rows of export #{export.pk} per split, stacked by approved label.",
    )  # fmt: skip
