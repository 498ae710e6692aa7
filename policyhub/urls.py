from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from exports.api import router as exports_router
from labeling.api.agreement import router as agreement_router
from labeling.api.feedback import router as feedback_router
from labeling.api.gates import router as gates_router
from labeling.api.gold import router as gold_router
from labeling.api.imports import router as imports_router
from labeling.api.labelmap import router as labelmap_router
from labeling.api.labelstudio import router as labelstudio_router
from labeling.api.previews import router as previews_router
from labeling.api.redteam import router as redteam_router
from labeling.api.reviews import router as reviews_router
from labeling.api.runs import router as runs_router
from labeling.api.students import router as students_router
from labeling.api.teachers import router as teachers_router
from labeling.api.trust import router as trust_router

from . import views
from .api import router as policy_router
from .api_root import api
from .health import health_report


@never_cache
@require_GET
def healthz(request):
    """Public probe: 200 or 503 with the overall status; staff also see each check and its error."""
    healthy, report = health_report(details=request.user.is_staff)
    return JsonResponse(report, status=200 if healthy else 503)


# Every router of the JSON API, all mounted at /api/ (policyhub/api_root.py holds the API, its auth and errors).
api.add_router("/", policy_router)
api.add_router("/", imports_router)
api.add_router("/", runs_router)
api.add_router("/", labelstudio_router)
api.add_router("/", agreement_router)
api.add_router("/", reviews_router)
api.add_router("/", trust_router)
api.add_router("/", feedback_router)
api.add_router("/", redteam_router)
api.add_router("/", gates_router)
api.add_router("/", exports_router)
api.add_router("/", teachers_router)
api.add_router("/", gold_router)
api.add_router("/", previews_router)
api.add_router("/", labelmap_router)
api.add_router("/", students_router)

policy_patterns = [
    path("", views.policy_list, name="policy_list"),
    path("policies/new/", views.policy_create, name="policy_create"),
    path("policies/<slug:slug>/", views.policy_detail, name="policy_detail"),
    path("policies/<slug:slug>/compare/", views.version_compare, name="version_compare"),
    path("policies/<slug:slug>/draft/", views.draft_edit, name="draft_edit"),
    path("policies/<slug:slug>/draft/start/", views.draft_start, name="draft_start"),
    path("policies/<slug:slug>/draft/publish/", views.draft_publish, name="draft_publish"),
    path("policies/<slug:slug>/draft/preview/", views.markdown_preview, name="markdown_preview"),
    path("policies/<slug:slug>/v<int:number>/", views.version_detail, name="version_detail"),
    path("policies/<slug:slug>/v<int:number>/prompt/", views.version_prompt, name="version_prompt"),
    path("policies/<slug:slug>/v<int:number>/retire/", views.version_retire, name="version_retire"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("account/", include("policyhub.account_urls")),
    path("", include("labeling.urls")),
    path("", include("exports.urls")),
    *policy_patterns,
]
