"""Admin for the labeling app. Teacher configs and gold labels are edited here; imported data, runs, samples
and candidates are records of what happened and are read-only (change them through imports and runs)."""

from django.contrib import admin

from .forms import TeacherConfigForm
from .models import (
    BatchJob,
    Candidate,
    GateRecord,
    GoldLabel,
    GoldLabelEvent,
    ImportBatch,
    Job,
    LabelingRun,
    LabelStudioAccount,
    LabelStudioAnnotation,
    LabelStudioProject,
    Member,
    Pair,
    PendingStorageDeletion,
    PolicyFeedback,
    QualityGates,
    RedTeamRun,
    RedTeamSet,
    RedTeamVariant,
    ResponseCache,
    StudentEvaluation,
    StudentPrediction,
    TeacherConfig,
    TeacherConfigChange,
    TeacherSample,
)
from .services import teacher_config_save


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TeacherConfigChangeInline(admin.TabularInline):
    """The config's base URL and API key history (insert-only: shown, never edited)."""

    model = TeacherConfigChange
    fields = readonly_fields = ("changed_at", "changed_by", "field", "old_value", "new_value")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TeacherConfig)
class TeacherConfigAdmin(admin.ModelAdmin):
    form = TeacherConfigForm  # the API key is one of TEACHER_API_KEYS, as in the app's own form
    list_display = ("name", "provider", "model", "api_key_name", "samples_per_pair", "logprobs", "concurrency")
    list_filter = ("provider",)
    search_fields = ("name", "model")
    readonly_fields = ("created_by", "created_at", "n_supported", "n_checked_at")  # n: found out by the workers
    inlines = [TeacherConfigChangeInline]

    def save_model(self, request, obj, form, change):
        teacher_config_save(config=obj, user=request.user)  # validated again, and its changes recorded


@admin.register(TeacherConfigChange)
class TeacherConfigChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "config_name", "field", "old_value", "new_value", "changed_by")
    list_filter = ("field",)
    search_fields = ("config_name",)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(GoldLabel)
class GoldLabelAdmin(admin.ModelAdmin):
    list_display = ("pair", "policy", "label", "created_by", "created_at")
    list_filter = ("policy", "label")
    raw_id_fields = ("pair", "source_candidate")
    readonly_fields = ("created_by", "created_at")

    def save_model(self, request, obj, form, change):
        if not obj.created_by_id:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(GoldLabelEvent)
class GoldLabelEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "policy", "pair", "action", "label", "new_label", "user")
    list_filter = ("policy", "action")


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "headline", "seniority", "location")
    search_fields = ("external_id", "headline")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "title", "seniority", "location")
    search_fields = ("external_id", "title")


@admin.register(Pair)
class PairAdmin(ReadOnlyAdmin):
    list_display = ("id", "member", "job", "import_batch")
    raw_id_fields = ("member", "job")


@admin.register(RedTeamSet)
class RedTeamSetAdmin(ReadOnlyAdmin):
    list_display = ("id", "policy", "name", "seed", "sample_size", "created_by", "created_at")
    list_filter = ("policy",)


@admin.register(RedTeamVariant)
class RedTeamVariantAdmin(ReadOnlyAdmin):
    list_display = ("red_team_set", "index", "category", "field", "style", "expected_label", "expected_flag")
    list_filter = ("category",)
    raw_id_fields = ("red_team_set", "pair")


@admin.register(RedTeamRun)
class RedTeamRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "red_team_set", "policy_version", "draft_revision", "teacher_config", "created_by",
                    "created_at")  # fmt: skip
    raw_id_fields = ("red_team_set", "policy_version", "teacher_config")


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "source_name", "status", "rows_seen", "rows_created", "error_count", "created_at")
    list_filter = ("kind", "status")


@admin.register(LabelingRun)
class LabelingRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "policy_version",
        "teacher_config",
        "purpose",
        "status",
        "pairs_total",
        "samples_done",
        "cost",
    )
    list_filter = ("status", "purpose")


@admin.register(Candidate)
class CandidateAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "pair", "label", "confidence", "routing")
    list_filter = ("routing", "status")
    raw_id_fields = ("pair",)


@admin.register(TeacherSample)
class TeacherSampleAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "pair", "sample_index", "label", "error_kind", "cached")
    list_filter = ("error_kind", "cached")
    raw_id_fields = ("pair",)


@admin.register(ResponseCache)
class ResponseCacheAdmin(ReadOnlyAdmin):
    list_display = ("key", "model", "created_at")


@admin.register(BatchJob)
class BatchJobAdmin(ReadOnlyAdmin):
    list_display = ("run", "attempt", "openai_batch_id", "status", "request_count", "completed_count", "failed_count")
    list_filter = ("status",)


@admin.register(LabelStudioProject)
class LabelStudioProjectAdmin(ReadOnlyAdmin):
    list_display = ("run", "project_id", "url", "tasks_total", "last_push_at", "last_pull_at")


@admin.register(LabelStudioAccount)
class LabelStudioAccountAdmin(admin.ModelAdmin):
    """Links are made by the user with their own Label Studio token; staff can only look and remove one."""

    list_display = ("user", "labelstudio_user_id", "email", "linked_at")
    readonly_fields = list_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LabelStudioAnnotation)
class LabelStudioAnnotationAdmin(ReadOnlyAdmin):
    list_display = ("annotation_id", "project", "candidate", "email", "outcome", "reason", "imported_at")
    list_filter = ("outcome",)
    raw_id_fields = ("candidate", "review")


@admin.register(PolicyFeedback)
class PolicyFeedbackAdmin(ReadOnlyAdmin):
    """Read-only: flags are resolved or dismissed in the policy's feedback inbox, which checks the outcome."""

    list_display = ("id", "policy", "version", "kind", "rule_ids", "status", "created_by", "created_at", "closed_by")
    list_filter = ("status", "kind", "policy")
    raw_id_fields = ("candidate", "pair")


@admin.register(QualityGates)
class QualityGatesAdmin(ReadOnlyAdmin):
    """Set on the policy page (policy owners), where every change is checked; shown here."""

    list_display = (
        "policy",
        "min_gold_accuracy",
        "max_rule_accuracy_drop",
        "max_flip_rate",
        "updated_by",
        "updated_at",
    )


@admin.register(GateRecord)
class GateRecordAdmin(ReadOnlyAdmin):
    """What the gates said when each version was published: kept for good."""

    list_display = ("version", "gates_configured", "passed", "published_by", "overridden_by", "created_at")
    list_filter = ("passed", "gates_configured")

    def has_delete_permission(self, request, obj=None):
        return False


# --- students ---
@admin.register(StudentEvaluation)
class StudentEvaluationAdmin(ReadOnlyAdmin):
    list_display = ("id", "student_name", "student_version", "export", "rows", "in_train", "created_by", "created_at")
    raw_id_fields = ("export", "policy_version")


@admin.register(StudentPrediction)
class StudentPredictionAdmin(ReadOnlyAdmin):
    list_display = ("evaluation", "line", "pair", "label", "confidence", "export_split", "queued_at")
    list_filter = ("export_split",)
    raw_id_fields = ("evaluation", "pair", "candidate")


@admin.register(PendingStorageDeletion)
class PendingStorageDeletionAdmin(ReadOnlyAdmin):
    """Stored files the watchdog still has to delete (the store was down when they were let go): shown, never
    edited or removed by hand, since a row removed here would leave its file behind for good."""

    list_display = ("storage", "name", "attempts", "last_error", "created_at", "last_attempt_at", "next_attempt_at")
    list_filter = ("storage",)
    search_fields = ("name",)

    def has_delete_permission(self, request, obj=None):
        return False
