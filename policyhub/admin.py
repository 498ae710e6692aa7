from django.contrib import admin

from .models import ApiToken, Policy, PolicyVersion, PromptSnapshot


class VersionInline(admin.TabularInline):
    model = PolicyVersion
    fields = ("number", "status", "content_hash", "author", "published_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "owner", "created_at")
    search_fields = ("slug", "name")
    inlines = [VersionInline]

    def has_delete_permission(self, request, obj=None):
        """A policy with published versions stays: labels and datasets point at those versions."""
        if obj is not None and obj.versions.exclude(status=PolicyVersion.Status.DRAFT).exists():
            return False
        return super().has_delete_permission(request, obj)


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Drafts are editable here; published and retired versions are read-only and cannot be deleted."""

    list_display = ("policy", "number", "status", "content_hash", "author", "published_at")
    list_filter = ("status", "policy")
    readonly_fields = ("content_hash", "revision", "created_at", "updated_at", "published_at", "published_by")

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.is_draft:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not obj.is_draft:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(PromptSnapshot)
class PromptSnapshotAdmin(admin.ModelAdmin):
    list_display = ("version", "prompt_sha256", "created_at")
    readonly_fields = ("version", "content_hash", "system_prompt", "prompt_sha256", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued in the browser or with ``manage.py api_token``; the admin can only look and revoke."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at", "expires_at")
    fields = readonly_fields + ("revoked_at",)

    def has_add_permission(self, request):
        return False
