"""Dataset exports: immutable, checksummed snapshots of approved labels for one published policy version.

An export row exists from the moment it is asked for; a Celery task builds its files into a hidden staging folder
and moves them into place only when every file and the manifest are complete. Once built (``ready``) nothing about
it changes again: the model refuses the save, the files are read-only, and deleting is an explicit, recorded step
that keeps the row (and its manifest) as the record of what existed.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

#: The files an export can hold, in build order; each has one writer module in ``exports/writers``.
FORMATS = ("labels.jsonl", "labels.parquet", "openai_chat.jsonl")
DEFAULT_FORMATS = list(FORMATS)


class DatasetExport(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        DELETED = "deleted", "Deleted"

    policy_version = models.ForeignKey("policyhub.PolicyVersion", on_delete=models.PROTECT, related_name="exports")
    runs = models.ManyToManyField("labeling.LabelingRun", related_name="exports")
    filters = models.JSONField(default=dict, help_text="What was selected (see exports.selection.Filters).")
    split = models.JSONField(default=dict, help_text="Split recipe: ratios, seed, group_by_job.")
    formats = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    stage = models.CharField(max_length=60, blank=True, help_text="What the build is doing now.")
    error = models.TextField(blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    archive_sha256 = models.CharField(max_length=64, blank=True)
    archive_size = models.PositiveBigIntegerField(default=0)
    idempotency_key = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A worker builds it until then (renewed).")
    lease_token = models.CharField(max_length=32, blank=True)
    queued_at = models.DateTimeField(default=timezone.now, help_text="When its build was last sent to the workers.")
    recoveries = models.PositiveIntegerField(default=0, help_text="Times the watchdog sent its build again.")
    recovered_at = models.DateTimeField(null=True, blank=True)
    storage_key = models.CharField(
        max_length=200, blank=True,
        help_text="Where its files are in the exports storage: <id> (a folder) or <id>/<build> (an object store).",
    )  # fmt: skip
    stored_etags = models.JSONField(
        default=dict, blank=True, help_text="Each stored object's ETag (object store): a changed object is refused."
    )

    #: Fields a built export never changes again (the deletion fields and status → deleted are the one way out).
    FROZEN = ("policy_version_id", "filters", "split", "formats", "rows_total", "manifest", "archive_sha256",
              "archive_size", "idempotency_key", "created_by_id", "finished_at", "storage_key",
              "stored_etags")  # fmt: skip

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="export_unique_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"export #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.BUILDING)

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    @property
    def archive_name(self) -> str:
        return f"policyhub-export-{self.pk}.tar"

    @property
    def files(self) -> list[dict]:
        """[{name, size, sha256, rows?}] from the manifest (empty until built)."""
        return self.manifest.get("files", [])

    @property
    def key(self) -> str:
        """Its folder (key prefix) in the exports storage; exports built before object storage have none."""
        return self.storage_key or str(self.pk)

    def file_entry(self, name: str) -> dict | None:
        return next((f for f in self.files if f["name"] == name), None)

    def save(self, *args, **kwargs):
        if self.pk and not kwargs.get("force_insert"):
            stored = type(self).objects.filter(pk=self.pk).values("status", *self.FROZEN).first()
            if stored and stored["status"] in (self.Status.READY, self.Status.DELETED):
                changed = [f for f in self.FROZEN if getattr(self, f) != stored[f]]
                leaving = self.status != stored["status"]
                if changed or (leaving and not (stored["status"] == self.Status.READY and self.status == "deleted")):
                    raise ValidationError(
                        f"Export #{self.pk} is {stored['status']}: it never changes "
                        f"({', '.join(changed) or 'status'}). Create a new export instead."
                    )
        super().save(*args, **kwargs)
