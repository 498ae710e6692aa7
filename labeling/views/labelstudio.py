"""The Label Studio account page: a user links their Label Studio account once, with their own access token, so
that pulled annotations are theirs (Label Studio's emails are not verified, so they prove nothing)."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from policyhub.roles import ALL_ROLES, role_required

from .. import services
from ..models import LabelStudioAccount


@never_cache
@role_required(*ALL_ROLES)
@require_http_methods(["GET", "POST"])
def labelstudio_account(request):
    error = ""
    if request.method == "POST":
        try:
            account = services.labelstudio_account_link(user=request.user, token=request.POST.get("token", ""))
        except (services.LabelStudioError, PermissionDenied) as exc:
            error = str(exc)
        else:
            messages.success(request, f"Linked to Label Studio user #{account.labelstudio_user_id} ({account.email}).")
            return redirect("labelstudio_account")
    context = {
        "account": LabelStudioAccount.objects.filter(user=request.user).first(),
        "labelstudio_url": settings.LABEL_STUDIO_URL,
        "error": error,
    }
    return render(request, "labeling/labelstudio_account.html", context, status=400 if error else 200)


@role_required(*ALL_ROLES)
@require_POST
def labelstudio_account_unlink(request):
    services.labelstudio_account_unlink(user=request.user)
    messages.success(request, "Unlinked your Label Studio account: your annotations there are no longer pulled in.")
    return redirect("labelstudio_account")
