"""Policy text is shown as sanitised HTML: in the editor's live preview (htmx), the editor page and the version page."""

import pytest
from django.test.html import parse_html

from policyhub import services
from tests.html import elements

PAYLOAD = (
    "# Heading\n\n"
    "<script>alert(1)</script>\n\n"
    "<img src=x onerror=alert(1)>\n\n"
    "[click me](javascript:alert(1))\n\n"
    "Some **bold** text.\n"
)


def _find(node, predicate):
    return next(element for element in elements(node) if predicate(element))


def _has_class(element, name: str) -> bool:
    return name in dict(element.attributes).get("class", "").split()


def assert_harmless(fragment) -> None:
    """No script element, no event-handler attribute, no javascript: URL anywhere in ``fragment``."""
    found = list(elements(fragment))
    assert found, "nothing was rendered"
    assert not [e for e in found if e.name in ("script", "iframe", "object", "embed", "img")]
    for element in found:
        for name, value in element.attributes:
            assert not name.startswith("on"), f"<{element.name} {name}={value!r}>"
            assert "javascript:" not in (value or "").lower(), f"<{element.name} {name}={value!r}>"


def _preview(client, slug, body):
    return client.post(f"/policies/{slug}/draft/preview/", {"body": body}, HTTP_HX_REQUEST="true")


@pytest.mark.parametrize("body", ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", PAYLOAD])
def test_preview_returns_no_script_and_no_event_handler(body, policy, owner, client_for):
    response = _preview(client_for(owner), policy.slug, body)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert_harmless(parse_html(html))


def test_preview_shows_raw_html_as_text_so_the_author_sees_what_they_typed(policy, owner, client_for):
    response = _preview(client_for(owner), policy.slug, "<script>alert(1)</script>")

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.content.decode()


def test_preview_renders_markdown(policy, owner, client_for):
    response = _preview(client_for(owner), policy.slug, PAYLOAD)

    root = parse_html(response.content.decode())
    assert _find(root, lambda e: e.name == "h1").children == ["Heading"]
    assert _find(root, lambda e: e.name == "strong").children == ["bold"]
    assert "<html" not in response.content.decode()  # a fragment for htmx, not a page


def test_preview_of_another_policy_slug_is_not_found(policy, owner, client_for):
    assert _preview(client_for(owner), "no-such-policy", "x").status_code == 404


@pytest.fixture
def draft_with_payload(policy, owner):
    draft = policy.versions.get(number=2)
    return services.policy_version_draft_save(
        version=draft, user=owner, revision=draft.revision, body=PAYLOAD, labels=draft.labels, rules=draft.rules
    )


def test_version_page_renders_the_policy_body_sanitised(policy, owner, draft_with_payload, client_for):
    response = client_for(owner).get(f"/policies/{policy.slug}/v2/")

    assert response.status_code == 200
    body = _find(parse_html(response.content.decode()), lambda e: _has_class(e, "policy-body"))
    assert_harmless(body)
    assert _find(body, lambda e: e.name == "h1").children == ["Heading"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.content.decode()


def test_editor_preview_pane_is_sanitised_on_first_load(policy, owner, draft_with_payload, client_for):
    response = client_for(owner).get(f"/policies/{policy.slug}/draft/")

    assert response.status_code == 200
    root = parse_html(response.content.decode())
    assert_harmless(_find(root, lambda e: dict(e.attributes).get("id") == "body-preview"))
    textarea = _find(root, lambda e: e.name == "textarea" and dict(e.attributes).get("name") == "body")
    assert all(isinstance(child, str) for child in textarea.children)  # the source stays text in the editor


def test_published_version_page_is_sanitised_for_readers(policy, owner, annotator, draft_with_payload, client_for):
    draft = policy.versions.get(number=2)
    services.policy_version_publish(version=draft, user=owner)

    response = client_for(annotator).get(f"/policies/{policy.slug}/v2/")

    assert response.status_code == 200
    assert_harmless(_find(parse_html(response.content.decode()), lambda e: _has_class(e, "policy-body")))
