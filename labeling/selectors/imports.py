"""Reads for imports: the import batches and how many members, jobs and pairs the dataset holds."""

from django.db.models import QuerySet

from ..models import ImportBatch, Job, Member, Pair


def import_batch_list(*, limit: int = 50, with_errors: bool = False) -> QuerySet[ImportBatch]:
    qs = ImportBatch.objects.select_related("created_by")
    return (qs if with_errors else qs.defer("errors"))[:limit]


def import_batch_get(*, pk: int) -> ImportBatch:
    return ImportBatch.objects.select_related("created_by").get(pk=pk)


def dataset_counts() -> dict[str, int]:
    return {"members": Member.objects.count(), "jobs": Job.objects.count(), "pairs": Pair.objects.count()}
