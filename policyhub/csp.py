"""The Content-Security-Policy header (Django 5.2 has none built in; Django 6 does, and this is meant to give way to
it): ``settings.CONTENT_SECURITY_POLICY`` on every response that has none yet, except under the path prefixes of
``CONTENT_SECURITY_POLICY_EXEMPT`` (django-ninja's ``/api/docs`` loads Swagger UI from its CDN with an inline
script). An empty policy turns it off.

A middleware of a few lines rather than django-csp: the policy needs no nonces (no template has an inline script;
behaviour lives in ``static/*.js``), so a fixed header is all there is to send."""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY
        self.exempt = tuple(settings.CONTENT_SECURITY_POLICY_EXEMPT)

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response and not request.path.startswith(self.exempt):
            response["Content-Security-Policy"] = self.policy
        return response
