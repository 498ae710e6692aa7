"""The address a request came from, for login throttling (django-axes' ``AXES_CLIENT_IP_CALLABLE``).

Without a proxy (``TRUSTED_PROXY_COUNT=0``, the default) it is ``REMOTE_ADDR`` and nothing else: a client can send
any ``X-Forwarded-For`` it likes. Behind N proxies the operator trusts, each of them appends the address it received
the request from, so the client is the N-th entry from the right; entries further left were written by the client
and are ignored.
"""

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR")
