"""Diff two versions: labels by key, rules by ID, body side by side."""

from policyhub import services
from policyhub.diffing import BodyRow, diff_body, version_diff
from policyhub.models import PolicyVersion


def _version(*, body="", labels=(), rules=()) -> PolicyVersion:
    return PolicyVersion(body=body, labels=list(labels), rules=list(rules))


def _by_key(changes) -> dict:
    return {change.key: change for change in changes}


LABELS_OLD = [
    {"key": "yes", "title": "Yes", "definition": "It fits."},
    {"key": "maybe", "title": "Maybe", "definition": "Unsure."},
    {"key": "no", "title": "No", "definition": "It does not fit."},
]
RULES_OLD = [
    {"id": "R1", "text": "Skills overlap.", "positive_examples": [], "negative_examples": []},
    {"id": "R2", "text": "Seniority is close.", "positive_examples": ["Senior vs staff"], "negative_examples": []},
    {"id": "R3", "text": "Location works.", "positive_examples": [], "negative_examples": []},
]


# --- labels and rules ---------------------------------------------------------------------------------------
def test_labels_are_matched_by_key_as_added_removed_changed():
    new_labels = [
        {"key": "no", "title": "No", "definition": "A must-have is missing."},  # definition changed, moved
        {"key": "yes", "title": "Yes", "definition": "It fits."},  # unchanged
        {"key": "partly", "title": "Partly", "definition": "Some gaps."},  # added
    ]  # "maybe" removed

    diff = version_diff(_version(labels=LABELS_OLD), _version(labels=new_labels))

    changes = _by_key(diff.labels)
    assert {key: c.change for key, c in changes.items()} == {
        "no": "changed",
        "yes": "unchanged",
        "partly": "added",
        "maybe": "removed",
    }
    assert changes["no"].changed_fields == ("definition",)
    assert changes["no"].old["definition"] == "It does not fit."
    assert changes["no"].new["definition"] == "A must-have is missing."
    assert changes["partly"].old is None and changes["partly"].new["title"] == "Partly"
    assert changes["maybe"].new is None and changes["maybe"].old["definition"] == "Unsure."
    assert diff.summary()["labels"] == {"added": 1, "removed": 1, "changed": 1}


def test_changes_follow_the_new_order_then_removed_items():
    new_labels = [LABELS_OLD[2], {"key": "extra", "definition": "New."}, LABELS_OLD[0]]

    diff = version_diff(_version(labels=LABELS_OLD), _version(labels=new_labels))

    assert [(c.key, c.change) for c in diff.labels] == [
        ("no", "unchanged"),
        ("extra", "added"),
        ("yes", "unchanged"),
        ("maybe", "removed"),
    ]


def test_rules_are_matched_by_id_with_changed_fields():
    new_rules = [
        {"id": "R1", "text": "Skills overlap.", "positive_examples": [], "negative_examples": []},
        {
            "id": "R2",
            "text": "Seniority differs by at most one level.",
            "positive_examples": ["Senior vs staff"],
            "negative_examples": ["Intern vs principal"],
        },
        {"id": "R4", "text": "Salary fits.", "positive_examples": [], "negative_examples": []},
    ]

    diff = version_diff(_version(rules=RULES_OLD), _version(rules=new_rules))

    changes = _by_key(diff.rules)
    assert changes["R1"].change == "unchanged"
    assert changes["R1"].changed_fields == ()
    assert changes["R2"].change == "changed"
    assert changes["R2"].changed_fields == ("negative_examples", "text")
    assert changes["R3"].change == "removed"
    assert changes["R4"].change == "added"
    assert diff.summary()["rules"] == {"added": 1, "removed": 1, "changed": 1}


def test_a_rule_with_new_text_under_the_same_id_is_changed_not_added_and_removed():
    new_rules = [dict(RULES_OLD[0], text="Most required skills overlap.")]

    diff = version_diff(_version(rules=RULES_OLD[:1]), _version(rules=new_rules))

    assert [(c.key, c.change, c.changed_fields) for c in diff.rules] == [("R1", "changed", ("text",))]


def test_identical_versions_have_no_changes():
    old = _version(body="Same.\nText.", labels=LABELS_OLD, rules=RULES_OLD)
    new = _version(body="Same.\nText.", labels=[dict(x) for x in LABELS_OLD], rules=[dict(x) for x in RULES_OLD])

    diff = version_diff(old, new)

    assert not diff.body_changed
    assert all(c.change == "unchanged" for c in diff.labels + diff.rules)
    assert diff.summary() == {
        "labels": {"added": 0, "removed": 0, "changed": 0},
        "rules": {"added": 0, "removed": 0, "changed": 0},
    }


# --- body ---------------------------------------------------------------------------------------------------
def test_body_rows_line_up_equal_lines_with_their_numbers():
    rows = diff_body("a\nb\nc", "a\nb\nc")

    assert rows == [
        BodyRow("equal", 1, "a", 1, "a"),
        BodyRow("equal", 2, "b", 2, "b"),
        BodyRow("equal", 3, "c", 3, "c"),
    ]


def test_body_insert_has_no_old_line():
    rows = diff_body("a\nc", "a\nb\nc")

    assert rows == [
        BodyRow("equal", 1, "a", 1, "a"),
        BodyRow("insert", None, "", 2, "b"),
        BodyRow("equal", 2, "c", 3, "c"),
    ]


def test_body_delete_has_no_new_line():
    rows = diff_body("a\nb\nc", "a\nc")

    assert rows == [
        BodyRow("equal", 1, "a", 1, "a"),
        BodyRow("delete", 2, "b", None, ""),
        BodyRow("equal", 3, "c", 2, "c"),
    ]


def test_body_replace_pairs_old_and_new_lines_side_by_side():
    rows = diff_body("title\nold one\nold two\nend", "title\nnew one\nend")

    assert rows == [
        BodyRow("equal", 1, "title", 1, "title"),
        BodyRow("replace", 2, "old one", 2, "new one"),
        BodyRow("delete", 3, "old two", None, ""),
        BodyRow("equal", 4, "end", 3, "end"),
    ]


def test_body_replace_with_more_new_lines_inserts_the_rest():
    rows = diff_body("x", "y\nz")

    assert rows == [BodyRow("replace", 1, "x", 1, "y"), BodyRow("insert", None, "", 2, "z")]


def test_body_from_empty_is_all_inserts():
    rows = diff_body("", "one\ntwo")

    assert [(r.kind, r.old_number, r.new_number) for r in rows] == [("insert", None, 1), ("insert", None, 2)]


def test_version_diff_reports_body_changed():
    diff = version_diff(_version(body="a\nb"), _version(body="a\nB"))

    assert diff.body_changed
    assert [r.kind for r in diff.body_rows] == ["equal", "replace"]


# --- stored versions ----------------------------------------------------------------------------------------
def test_diff_of_published_v1_and_edited_draft(policy, owner):
    v1 = policy.versions.get(number=1)
    draft = policy.versions.get(status=PolicyVersion.Status.DRAFT)
    labels = [label for label in draft.labels if label["key"] != "partial_match"]
    rules = [dict(rule) for rule in draft.rules]
    rules[1]["text"] = "Seniority differs by at most two levels."
    rules.append({"id": "", "text": "Salary range overlaps."})
    v2 = services.policy_version_draft_save(
        version=draft,
        user=owner,
        revision=draft.revision,
        body=draft.body.replace("Judge from the profile only.", "Judge from the profile and the job only."),
        labels=labels,
        rules=rules,
    )

    diff = version_diff(v1, v2)

    assert [(c.key, c.change) for c in diff.labels if c.change != "unchanged"] == [("partial_match", "removed")]
    assert [(c.key, c.change, c.changed_fields) for c in diff.rules if c.change != "unchanged"] == [
        ("R2", "changed", ("text",)),
        ("R4", "added", ()),
    ]
    changed_rows = [r for r in diff.body_rows if r.kind != "equal"]
    assert changed_rows == [
        BodyRow("replace", 3, "Judge from the profile only.", 3, "Judge from the profile and the job only.")
    ]
