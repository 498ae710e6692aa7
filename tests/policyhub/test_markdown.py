"""Policy text is markdown rendered to safe HTML: formatting survives, scripts and handlers do not."""

from html.parser import HTMLParser

import pytest

from policyhub.markdown import render_markdown


class _Elements(HTMLParser):
    """Collect every element and its attributes, as a browser would see them."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def _tags(html: str) -> set[str]:
    return {tag for tag, _ in _elements(html)}


def test_script_tag_is_shown_as_text_not_run():
    html = render_markdown("Before <script>alert(1)</script> after")

    assert "script" not in _tags(html)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_script_block_is_shown_as_text_not_run():
    html = render_markdown("<script>\nalert(1)\n</script>\n")

    assert "script" not in _tags(html)
    assert "<script" not in html.lower()


@pytest.mark.parametrize(
    "source",
    [
        "<img src=x onerror=alert(1)>",
        "Inline <img src=x onerror=alert(1)> image",
        '<p onclick="alert(1)">hi</p>',
        "<svg onload=alert(1)>",
    ],
)
def test_raw_html_elements_and_event_handlers_are_removed(source):
    html = render_markdown(source)

    elements = _elements(html)
    assert "img" not in _tags(html)
    assert "svg" not in _tags(html)
    assert "<img" not in html.lower()
    assert all(not name.startswith("on") for _, attrs in elements for name in attrs)


@pytest.mark.parametrize(
    "source",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](  javascript:alert(1)  )",
        "<javascript:alert(1)>",
        '<a href="javascript:alert(1)">click</a>',
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click][ref]\n\n[ref]: javascript:alert(1)",
        "[click](data:image/png;base64,iVBORw0KGgo=)",
        "[click](ftp://example.com/file)",
        "[click](vbscript:msgbox(1))",
    ],
)
def test_only_http_https_and_mailto_links_are_kept(source):
    html = render_markdown(source)

    hrefs = [attrs["href"] or "" for tag, attrs in _elements(html) if tag == "a" and "href" in attrs]
    assert all(href.startswith(("http:", "https:", "mailto:")) for href in hrefs)
    values = [value.strip().lower() for _, attrs in _elements(html) for value in attrs.values() if value]
    assert not any(value.startswith(("javascript:", "data:")) for value in values)


def test_image_markdown_does_not_produce_an_image():
    html = render_markdown("![x](https://example.com/tracker.png)")

    assert "img" not in _tags(html)


def test_headings_bold_and_lists_are_kept():
    html = render_markdown("# Match policy\n\n## Scope\n\nThis is **important** and *emphasised*.\n\n- one\n- two\n")

    assert "<h1>Match policy</h1>" in html
    assert "<h2>Scope</h2>" in html
    assert "<strong>important</strong>" in html
    assert "<em>emphasised</em>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html


def test_numbered_lists_code_and_quotes_are_kept():
    html = render_markdown("1. first\n2. second\n\n> quoted\n\nUse `skills` here.\n")

    assert {"ol", "li", "blockquote", "code"} <= _tags(html)
    assert "<code>skills</code>" in html


def test_safe_links_are_kept_and_marked_nofollow():
    html = render_markdown("See [the guide](https://example.com/guide) or [mail](mailto:team@example.com).")

    links = [attrs for tag, attrs in _elements(html) if tag == "a"]
    assert [link["href"] for link in links] == ["https://example.com/guide", "mailto:team@example.com"]
    assert all(set(link["rel"].split()) == {"noopener", "noreferrer", "nofollow"} for link in links)
    assert ">the guide</a>" in html


def test_tables_are_kept():
    html = render_markdown("| label | meaning |\n|---|---|\n| yes | fits |\n")

    assert {"table", "thead", "tbody", "tr", "th", "td"} <= _tags(html)


def test_empty_text_renders_empty():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""
