"""API token pages: every user with a role manages their own tokens."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import services
from .models import ApiToken
from .roles import ALL_ROLES, role_required


@never_cache  # the page that shows a new token must not be kept in a browser or proxy cache
@role_required(*ALL_ROLES)
@require_http_methods(["GET", "POST"])
def token_list(request):
    issued, errors = None, []
    if request.method == "POST":
        try:
            issued = services.api_token_create(user=request.user, name=request.POST.get("name", ""))
        except ValidationError as error:
            errors = error.messages
    return render(
        request,
        "policyhub/token_list.html",
        {"tokens": ApiToken.objects.filter(user=request.user), "issued": issued, "errors": errors},
        status=400 if errors else 200,
    )


@role_required(*ALL_ROLES)
@require_POST
def token_revoke(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    services.api_token_revoke(token=token, user=request.user)
    messages.success(request, f"Revoked the token {token.name}.")
    return redirect("token_list")
