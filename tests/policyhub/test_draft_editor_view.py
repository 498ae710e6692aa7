"""The draft editor page: the draft form with its label and rule formsets, errors by the field, stale saves."""

from html.parser import HTMLParser

import pytest
from django.utils.html import escape

from policyhub import roles, services
from policyhub.models import PolicyVersion


class _DraftFormFields(HTMLParser):
    """The fields a browser would submit from ``<form id="draft-form">`` (rows inside ``<template>`` are not sent)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._template_depth = 0
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == "draft-form":
            self._in_form = True
        if tag == "template":
            self._template_depth += 1
        if not self._in_form or self._template_depth or not attrs.get("name"):
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button") or (kind == "checkbox" and "checked" not in attrs):
                return
            self.fields[attrs["name"]] = attrs.get("value") or ("on" if kind == "checkbox" else "")
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.fields[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea:
            value = self.fields[self._textarea]
            self.fields[self._textarea] = value[1:] if value.startswith("\n") else value  # as browsers do
            self._textarea = None
        elif tag == "template":
            self._template_depth -= 1
        elif tag == "form":
            self._in_form = False


def submitted_fields(html: str) -> dict[str, str]:
    parser = _DraftFormFields()
    parser.feed(html)
    fields = parser.fields
    fields.pop("csrfmiddlewaretoken", None)
    return fields


def editor_post_data(
    version, *, body=None, labels=None, rules=None, revision=None, label_mapping=None
) -> dict[str, str]:
    """The POST a browser sends from the editor of ``version`` with the given content (default: unchanged)."""
    labels = version.labels if labels is None else labels
    rules = version.rules if rules is None else rules
    mapping = version.label_mapping if label_mapping is None else label_mapping
    data = {
        "revision": str(version.revision if revision is None else revision),
        "body": version.body if body is None else body,
        "label_mapping": "\n".join(f"{old} -> {', '.join(new)}" for old, new in mapping.items()),
        "labels-TOTAL_FORMS": str(len(labels)),
        "labels-INITIAL_FORMS": str(min(len(labels), len(version.labels))),
        "labels-MIN_NUM_FORMS": "0",
        "labels-MAX_NUM_FORMS": "1000",
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": str(min(len(rules), len(version.rules))),
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
    }
    for index, label in enumerate(labels):
        for field in ("key", "title", "definition"):
            data[f"labels-{index}-{field}"] = label.get(field, "")
    for index, rule in enumerate(rules):
        data[f"rules-{index}-id"] = rule.get("id", "")
        data[f"rules-{index}-text"] = rule.get("text", "")
        for field in ("positive_examples", "negative_examples"):
            value = rule.get(field, [])
            data[f"rules-{index}-{field}"] = value if isinstance(value, str) else "\n".join(value)
    return data


@pytest.fixture
def draft(policy):
    return policy.versions.get(number=2)


def _url(policy) -> str:
    return f"/policies/{policy.slug}/draft/"


def test_editor_shows_the_drafts_labels_and_rules_in_the_form(policy, draft, owner, client_for):
    services.policy_version_draft_save(
        version=draft,
        user=owner,
        revision=draft.revision,
        body=draft.body,
        labels=draft.labels,
        rules=[{**draft.rules[0], "positive_examples": ["Python job, Python member", "SQL job, SQL member"]}]
        + draft.rules[1:],
    )
    draft.refresh_from_db()

    response = client_for(owner).get(_url(policy))

    assert response.status_code == 200
    assert submitted_fields(response.content.decode()) == editor_post_data(draft)
    assert b"Meets the must-haves." in response.content
    assert b"Seniority differs by at most one level." in response.content


def test_submitting_the_editor_unchanged_saves_nothing_new_but_bumps_the_revision(policy, draft, owner, client_for):
    client = client_for(owner)
    fields = submitted_fields(client.get(_url(policy)).content.decode())

    response = client.post(_url(policy), {**fields, "save": "1"})

    assert response.status_code == 302
    saved = PolicyVersion.objects.get(pk=draft.pk)
    assert (saved.body, saved.labels, saved.rules) == (draft.body, draft.labels, draft.rules)
    assert saved.revision == draft.revision + 1


def test_browser_crlf_newlines_leave_unchanged_text_with_the_same_content_hash(policy, draft, owner, client_for):
    data = editor_post_data(draft, body=draft.body.replace("\n", "\r\n"))  # what a browser sends from a textarea

    response = client_for(owner).post(_url(policy), data)

    assert response.status_code == 302
    saved = PolicyVersion.objects.get(pk=draft.pk)
    assert saved.body == draft.body
    assert saved.content_hash == policy.versions.get(number=1).content_hash


def test_leading_blank_lines_and_indentation_of_the_body_survive_an_unchanged_save(policy, draft, owner, client_for):
    body = "\n    indented code block\n\nText.\n"
    services.policy_version_draft_save(
        version=draft, user=owner, revision=draft.revision, body=body, labels=draft.labels, rules=draft.rules
    )
    client = client_for(owner)
    fields = submitted_fields(client.get(_url(policy)).content.decode())

    response = client.post(_url(policy), {**fields, "save": "1"})

    assert response.status_code == 302
    assert PolicyVersion.objects.get(pk=draft.pk).body == body


def test_valid_edit_is_saved_and_redirects_back_to_the_editor(policy, draft, owner, client_for):
    labels = [dict(label) for label in draft.labels]
    labels[1]["definition"] = "Some requirements are met, others are not."
    rules = [dict(rule) for rule in draft.rules]
    rules[2]["text"] = "Location is compatible, the job is remote, or the member relocates."
    rules[2]["negative_examples"] = ["Onsite in Paris; member in Tokyo, not relocating."]

    response = client_for(owner).post(
        _url(policy), editor_post_data(draft, body="# New text\n", labels=labels, rules=rules)
    )

    assert response.status_code == 302
    assert response.url == _url(policy)
    saved = PolicyVersion.objects.get(pk=draft.pk)
    assert saved.body == "# New text\n"
    assert saved.labels[1]["definition"] == "Some requirements are met, others are not."
    assert saved.rules[2]["text"] == "Location is compatible, the job is remote, or the member relocates."
    assert saved.rules[2]["negative_examples"] == ["Onsite in Paris; member in Tokyo, not relocating."]
    assert saved.revision == draft.revision + 1
    assert saved.status == PolicyVersion.Status.DRAFT
    follow = client_for(owner).get(_url(policy))
    assert f"Saved draft v2 (revision {saved.revision})" in follow.content.decode()


def test_removing_a_row_with_the_delete_box_drops_it(policy, draft, owner, client_for):
    data = editor_post_data(draft)
    data["labels-2-DELETE"] = "on"

    response = client_for(owner).post(_url(policy), data)

    assert response.status_code == 302
    assert PolicyVersion.objects.get(pk=draft.pk).label_keys == ["strong_match", "partial_match"]


def test_a_new_rule_with_an_empty_id_gets_the_next_free_id(policy, draft, owner, client_for):
    rules = [*draft.rules, {"id": "", "text": "A required licence must be held."}]

    response = client_for(owner).post(_url(policy), editor_post_data(draft, rules=rules))

    assert response.status_code == 302
    saved = PolicyVersion.objects.get(pk=draft.pk)
    assert saved.rule_ids == ["R1", "R2", "R3", "R4"]
    assert saved.rules[3]["text"] == "A required licence must be held."
    page = client_for(owner).get(_url(policy))
    assert submitted_fields(page.content.decode())["rules-3-id"] == "R4"


def _assert_nothing_saved(draft):
    saved = PolicyVersion.objects.get(pk=draft.pk)
    assert saved.revision == draft.revision
    assert (saved.body, saved.labels, saved.rules) == (draft.body, draft.labels, draft.rules)


def _label_rows_html(html: str) -> list[str]:
    rows_html = html.split('<div id="label-rows">', 1)[1].split('<template id="label-template">', 1)[0]
    return rows_html.split('<div class="row labels">')[1:]


def test_duplicate_label_key_is_shown_by_the_second_rows_key(policy, draft, owner, client_for):
    labels = [dict(label) for label in draft.labels]
    labels[1]["key"] = "strong_match"

    response = client_for(owner).post(_url(policy), editor_post_data(draft, body="changed", labels=labels))

    assert response.status_code == 400
    editor = response.context["editor"]
    assert editor.labels.forms[1].errors["key"] == ["The key 'strong_match' is used twice."]
    assert "key" not in editor.labels.forms[0].errors
    rows = _label_rows_html(response.content.decode())
    assert escape("The key 'strong_match' is used twice.") in rows[1]
    assert "used twice" not in rows[0] and "used twice" not in rows[2]
    _assert_nothing_saved(draft)


def test_empty_label_definition_is_shown_by_that_field(policy, draft, owner, client_for):
    labels = [dict(label) for label in draft.labels]
    labels[2]["definition"] = ""

    response = client_for(owner).post(_url(policy), editor_post_data(draft, labels=labels))

    assert response.status_code == 400
    editor = response.context["editor"]
    assert editor.labels.forms[2].errors["definition"]
    assert not editor.labels.forms[0].errors and not editor.labels.forms[1].errors
    assert "This field is required." in _label_rows_html(response.content.decode())[2]
    _assert_nothing_saved(draft)


def test_a_rule_id_used_twice_is_shown_by_the_second_rules_id(policy, draft, owner, client_for):
    rules = [dict(rule) for rule in draft.rules]
    rules[2]["id"] = "R1"

    response = client_for(owner).post(_url(policy), editor_post_data(draft, rules=rules))

    assert response.status_code == 400
    editor = response.context["editor"]
    assert editor.rules.forms[2].errors["id"] == ["The ID R1 is used twice."]
    assert "id" not in editor.rules.forms[0].errors
    assert "The ID R1 is used twice." in response.content.decode()
    _assert_nothing_saved(draft)


def test_an_error_keeps_what_the_user_typed_in_the_form(policy, draft, owner, client_for):
    labels = [dict(label) for label in draft.labels]
    labels[1]["key"] = "strong_match"

    response = client_for(owner).post(_url(policy), editor_post_data(draft, body="My unsaved text", labels=labels))

    fields = submitted_fields(response.content.decode())
    assert fields["body"] == "My unsaved text"
    assert fields["labels-1-key"] == "strong_match"
    assert fields["revision"] == str(draft.revision)


def test_stale_save_shows_the_conflict_and_loses_neither_edit(policy, draft, owner, make_user, client_for):
    client = client_for(owner)
    opened = submitted_fields(client.get(_url(policy)).content.decode())
    other = make_user("oscar", roles.POLICY_OWNER)
    theirs = services.policy_version_draft_save(
        version=draft,
        user=other,
        revision=draft.revision,
        body="Oscar's version of the text.\n",
        labels=draft.labels,
        rules=[*draft.rules, {"id": "", "text": "Oscar's new rule about visas."}],
    )

    mine = {**opened, "body": "Olivia's version of the text.\n", "save": "1"}
    response = client.post(_url(policy), mine)

    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="conflict"' in html
    assert f"oscar saved revision {theirs.revision}" in html
    assert "Oscar&#x27;s version of the text." in html  # their content, in the conflict diff
    assert "Oscar&#x27;s new rule about visas." in html
    fields = submitted_fields(html)
    assert fields["body"] == "Olivia's version of the text.\n"  # my typed text is still in the form
    assert fields["revision"] == str(theirs.revision)
    stored = PolicyVersion.objects.get(pk=draft.pk)
    assert stored.body == "Oscar's version of the text.\n"
    assert stored.revision == theirs.revision
    assert stored.rule_ids == ["R1", "R2", "R3", "R4"]

    again = client.post(_url(policy), {**fields, "save": "1"})

    assert again.status_code == 302
    stored.refresh_from_db()
    assert stored.body == "Olivia's version of the text.\n"
    assert stored.revision == theirs.revision + 1


def test_save_and_publish_publishes_and_shows_the_version(policy, draft, owner, client_for):
    client = client_for(owner)
    data = {**editor_post_data(draft, body="# Final text\n"), "publish": "1"}

    response = client.post(_url(policy), data)

    assert response.status_code == 302
    assert response.url == f"/policies/{policy.slug}/v2/"
    published = PolicyVersion.objects.get(pk=draft.pk)
    assert published.status == PolicyVersion.Status.PUBLISHED
    assert published.body == "# Final text\n"
    assert published.published_by == owner
    page = client.get(response.url)
    assert "Published v2. It can no longer change." in page.content.decode()
    assert "Edit draft" not in page.content.decode()


def test_a_published_version_cannot_be_edited_any_more(policy, draft, owner, client_for):
    client = client_for(owner)
    client.post(_url(policy), {**editor_post_data(draft), "publish": "1"})

    get = client.get(_url(policy))
    post = client.post(_url(policy), editor_post_data(draft, body="Too late", revision=draft.revision + 1))

    assert get.status_code == 302 and get.url == f"/policies/{policy.slug}/"
    assert post.status_code == 302 and post.url == f"/policies/{policy.slug}/"
    published = PolicyVersion.objects.get(pk=draft.pk)
    assert published.status == PolicyVersion.Status.PUBLISHED
    assert published.body == draft.body
    assert "There is no draft" in client.get(get.url).content.decode()


def test_publishing_invalid_content_is_refused_and_keeps_the_draft(policy, draft, owner, client_for):
    data = {**editor_post_data(draft, labels=draft.labels[:1]), "publish": "1"}

    response = client_for(owner).post(_url(policy), data, follow=True)

    assert response.redirect_chain[-1][0] == _url(policy)
    assert "Cannot publish" in response.content.decode()
    saved = PolicyVersion.objects.get(pk=draft.pk)
    assert saved.status == PolicyVersion.Status.DRAFT
    assert saved.label_keys == ["strong_match"]  # the edit itself was saved
