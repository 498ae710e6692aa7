"""What the API endpoint tests share: a bearer header per caller, and the callers of the role matrix
(annotator, ML engineer, policy owner, no token, an expired token)."""

from datetime import timedelta

from django.utils import timezone

from policyhub import services
from policyhub.models import ApiToken

CALLERS = ["annotator", "ml_engineer", "policy_owner", "no_token", "expired_token"]


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {services.api_token_create(user=user, name='tests').raw}"}


def expired_bearer(user) -> dict:
    issued = services.api_token_create(user=user, name="old", lifetime_days=30)
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.raw}"}


def caller_headers(caller: str, *, annotator, engineer, owner, expired_as: str = "policy_owner") -> dict:
    """Headers for ``caller``; an expired token belongs to ``expired_as``, a role the endpoint allows (so only the
    expiry refuses it)."""
    users = {"annotator": annotator, "ml_engineer": engineer, "policy_owner": owner}
    if caller in users:
        return bearer(users[caller])
    return expired_bearer(users[expired_as]) if caller == "expired_token" else {}


def expect_refused(response, caller: str, allowed: set[str]) -> None:
    """The answer of the role matrix: 2xx for ``allowed`` callers (asserted by the caller), 401 without a valid
    token (saying so when expired), 403 naming the role otherwise."""
    if caller == "no_token":
        assert response.status_code == 401, response.content
    elif caller == "expired_token":
        assert response.status_code == 401 and "expired" in response.json()["detail"], response.content
    else:
        assert caller not in allowed
        assert response.status_code == 403 and "role" in response.json()["detail"], response.content
