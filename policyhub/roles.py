"""Roles are Django groups (created by a data migration); staff users hold every role."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

POLICY_OWNER = "policy_owner"
ANNOTATOR = "annotator"
ML_ENGINEER = "ml_engineer"
ALL_ROLES = (POLICY_OWNER, ANNOTATOR, ML_ENGINEER)
#: Roles that may read published policy versions.
READERS = ALL_ROLES


def user_roles(user) -> frozenset[str]:
    if not user or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_staff:
        return frozenset(ALL_ROLES)
    cached = getattr(user, "_policyhub_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        user._policyhub_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def require_role(user, *roles: str, message: str = "") -> None:
    """Services' check: raise PermissionDenied (with ``message``, or the roles needed) unless ``user`` holds one
    of ``roles``."""
    if not has_role(user, *roles):
        raise PermissionDenied(message or f"This needs the role {' or '.join(roles)}.")


def role_required(*roles: str) -> Callable:
    """View decorator: anonymous users go to the login page, users without one of ``roles`` get a 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, *roles):
                raise PermissionDenied(f"This page needs the role {' or '.join(roles)}.")
            return view(request, *args, **kwargs)

        wrapped.required_roles = roles
        return wrapped

    return decorator


def roles_context(request) -> dict:
    roles = user_roles(getattr(request, "user", None))
    return {
        "user_roles": sorted(roles),
        "is_policy_owner": POLICY_OWNER in roles,
        "is_annotator": ANNOTATOR in roles,
        "is_ml_engineer": ML_ENGINEER in roles,
    }
