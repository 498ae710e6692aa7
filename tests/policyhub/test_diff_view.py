"""The compare page: labels by key and rules by ID as added/removed/changed rows, the body side by side."""

import pytest
from django.test.html import parse_html

from policyhub import services
from tests.html import elements


def _attrs(element) -> dict:
    return dict(element.attributes)


def _rows(response, **attribute):
    """The ``<tr>`` elements of the page carrying ``data-<name>="value"``."""
    ((name, value),) = attribute.items()
    root = parse_html(response.content.decode())
    return [e for e in elements(root) if e.name == "tr" and _attrs(e).get(f"data-{name}") == value]


def _text(node) -> str:
    return " ".join(child if isinstance(child, str) else _text(child) for child in node.children).strip()


def _body_rows(response) -> list[tuple[str, list[str]]]:
    """(kind, [old number, old text, new number, new text]) for each row of the side-by-side body table."""
    root = parse_html(response.content.decode())
    table = next(e for e in elements(root) if e.name == "table" and "diff" in _attrs(e).get("class", "").split())
    tbody = next(e for e in table.children if not isinstance(e, str) and e.name == "tbody")
    return [
        (_attrs(tr).get("class", ""), [_text(td) for td in tr.children if not isinstance(td, str)])
        for tr in tbody.children
        if not isinstance(tr, str)
    ]


@pytest.fixture
def edited_draft(policy, owner):
    """Draft v2 with a new rule (R4), a changed label definition, a removed rule and a changed body line."""
    draft = policy.versions.get(number=2)
    labels = [dict(label) for label in draft.labels]
    labels[1]["definition"] = "Some gaps, none of them a must-have."
    rules = [dict(rule) for rule in draft.rules if rule["id"] != "R2"]
    rules.append({"id": "", "text": "A missing licence means no_match."})
    return services.policy_version_draft_save(
        version=draft,
        user=owner,
        revision=draft.revision,
        body="# Match policy\n\nJudge from the profile and the posting.\nCite the rules.\n",
        labels=labels,
        rules=rules,
    )


def _compare(client, policy, query="?from=1&to=2"):
    return client.get(f"/policies/{policy.slug}/compare/{query}")


def test_added_rule_is_shown_as_an_added_row(policy, owner, edited_draft, client_for):
    response = _compare(client_for(owner), policy)

    assert response.status_code == 200
    (row,) = _rows(response, rule="R4")
    assert _attrs(row)["class"] == "added"
    assert "A missing licence means no_match." in _text(row)


def test_removed_rule_is_shown_as_a_removed_row(policy, owner, edited_draft, client_for):
    (row,) = _rows(_compare(client_for(owner), policy), rule="R2")

    assert _attrs(row)["class"] == "removed"
    assert "Seniority differs by at most one level." in _text(row)


def test_changed_label_is_marked_changed_with_before_and_after(policy, owner, edited_draft, client_for):
    response = _compare(client_for(owner), policy)

    (row,) = _rows(response, label="partial_match")
    assert _attrs(row)["class"] == "changed"
    text = _text(row)
    assert "definition" in text  # which field changed
    assert "Some gaps." in text and "Some gaps, none of them a must-have." in text
    assert _rows(response, label="strong_match") == []  # unchanged labels are not listed
    assert _rows(response, rule="R1") == []


def test_body_is_compared_line_by_line_side_by_side(policy, owner, edited_draft, client_for):
    rows = _body_rows(_compare(client_for(owner), policy))

    assert rows == [
        ("equal", ["1", "# Match policy", "1", "# Match policy"]),
        ("equal", ["2", "", "2", ""]),
        ("replace", ["3", "Judge from the profile only.", "3", "Judge from the profile and the posting."]),
        ("insert", ["", "", "4", "Cite the rules."]),
    ]


def test_summary_counts_the_changes(policy, owner, edited_draft, client_for):
    html = _compare(client_for(owner), policy).content.decode()

    assert "Labels: 0 added, 0 removed, 1 changed" in html
    assert "Rules: 1 added, 1 removed, 0 changed" in html
    assert "Policy text changed" in html


def test_comparing_identical_versions_says_nothing_changed(policy, owner, client_for):
    response = _compare(client_for(owner), policy)  # the draft is still a copy of v1

    assert response.status_code == 200
    assert "Policy text unchanged" in response.content.decode()
    assert not _rows(response, rule="R1") and not _rows(response, label="strong_match")


@pytest.mark.parametrize("query", ["?from=x&to=2", "?from=1", "", "?from=1&to=two"])
def test_a_bad_query_is_a_400_with_a_hint(query, policy, owner, client_for):
    response = _compare(client_for(owner), policy, query)

    assert response.status_code == 400
    assert b"?from=<number>&to=<number>" in response.content


def test_an_unknown_version_number_is_not_found(policy, owner, client_for):
    assert _compare(client_for(owner), policy, "?from=1&to=9").status_code == 404


def test_comparing_a_draft_as_annotator_is_not_found(policy, annotator, edited_draft, client_for):
    response = _compare(client_for(annotator), policy)

    assert response.status_code == 404
    assert b"A missing licence" not in response.content


def test_annotator_compares_published_versions(policy, owner, annotator, edited_draft, client_for):
    services.policy_version_publish(version=edited_draft, user=owner)

    response = _compare(client_for(annotator), policy)

    assert response.status_code == 200
    (row,) = _rows(response, rule="R4")
    assert _attrs(row)["class"] == "added"
