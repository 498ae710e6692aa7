"""The Content-Security-Policy header (policyhub/csp.py): strict for scripts on every page and API answer but
django-ninja's CDN-hosted /api/docs, and no template carries what that policy would block (an inline script or an
inline event handler), so the policy never breaks a page silently. The browser side (charts drawn under the policy,
eval refused) is tests/e2e/test_csp.py."""

import re
from pathlib import Path

import pytest
from django.conf import settings

TEMPLATES = Path(settings.BASE_DIR) / "templates"
#: A <script> that runs inline: no src, and not a data block (type="application/json").
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", re.I)
HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.I)


def directives(response) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))


def test_pages_and_api_answers_carry_a_policy_that_allows_scripts_from_this_site_only(db, client, owner):
    client.force_login(owner)
    for response in (client.get("/login/"), client.get("/"), client.get("/api/openapi.json")):
        policy = directives(response)
        assert policy["script-src"] == "'self'", policy  # no 'unsafe-inline', no 'unsafe-eval'
        assert (policy["object-src"], policy["base-uri"], policy["frame-ancestors"]) == ("'none'", "'self'", "'none'")


def test_the_api_docs_page_is_left_without_it(db, client):
    assert "Content-Security-Policy" not in client.get("/api/docs")


def test_an_empty_setting_turns_it_off_and_a_view_may_set_its_own(settings, rf):
    from django.http import HttpResponse

    from policyhub.csp import ContentSecurityPolicyMiddleware

    settings.CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in ContentSecurityPolicyMiddleware(lambda r: HttpResponse())(rf.get("/"))
    settings.CONTENT_SECURITY_POLICY = "default-src 'self'"
    own = HttpResponse(headers={"Content-Security-Policy": "default-src 'none'"})
    assert (
        ContentSecurityPolicyMiddleware(lambda r: own)(rf.get("/"))["Content-Security-Policy"] == "default-src 'none'"
    )


@pytest.mark.parametrize(
    ("markup", "found"),
    [
        ("<script>alert(1)</script>", True),
        ('<form onsubmit="return confirm(1)">', True),
        ('<a href="javascript:void(0)">', True),
        ('<script src="/static/app.js" defer></script>', False),
        ('<script type="application/json" id="spec">{}</script>', False),
        ('<form data-confirm="Sure?">', False),
    ],
)
def test_the_template_scan_finds_what_the_policy_would_block(markup, found):
    assert bool(INLINE_SCRIPT.search(markup) or HANDLER.search(markup) or JS_URL.search(markup)) is found


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)[:80]}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for pattern in (INLINE_SCRIPT, HANDLER, JS_URL)
        for match in pattern.finditer(path.read_text())
    ]
    assert offenders == []
