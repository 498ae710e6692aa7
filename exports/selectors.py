"""Reads of the exports app."""

from django.db.models import QuerySet

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
