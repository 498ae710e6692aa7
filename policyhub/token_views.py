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
    expires = request.POST.get("expires", str(services.DEFAULT_TOKEN_LIFETIME_DAYS))
    if request.method == "POST":
        try:
            lifetime = None if expires == "never" else int(expires)
            issued = services.api_token_create(
                user=request.user, name=request.POST.get("name", ""), lifetime_days=lifetime
            )
        except ValueError:
            errors = [f"Choose when the token expires; {expires!r} is not one of the choices."]
        except ValidationError as error:
            errors = error.messages
    context = {
        "tokens": ApiToken.objects.filter(user=request.user),
        "issued": issued,
        "errors": errors,
        "lifetimes": [
            (str(days) if days else "never", f"{days} days" if days else "never")
            for days in services.TOKEN_LIFETIMES_DAYS
        ],  # fmt: skip
        "expires": expires,
    }
    return render(request, "policyhub/token_list.html", context, status=400 if errors else 200)


@role_required(*ALL_ROLES)
@require_POST
def token_revoke(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    services.api_token_revoke(token=token, user=request.user)
    messages.success(request, f"Revoked the token {token.name}.")
    return redirect("token_list")
