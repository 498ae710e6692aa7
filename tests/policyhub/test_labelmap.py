"""The pure part of label mappings: kinds of entries, the effective mapping, normalisation and reading a label
through a translation."""

from policyhub.labelmap import effective_mapping, mapping_rows, normalize_mapping, translate, validate_mapping

OLD = ["strong_match", "partial_match", "no_match"]


def test_entries_are_renames_merges_splits_or_kept():
    mapping = {"strong_match": ["great_match"], "partial_match": ["no_match"], "no_match": ["no_match", "far_off"]}
    assert [(r.old, r.kind) for r in mapping_rows(mapping, old_keys=OLD)] == [
        ("strong_match", "rename"), ("partial_match", "merge"), ("no_match", "split"),
    ]  # fmt: skip
    # two old labels to one new one is a merge; an old label kept implicitly counts as mapping to itself
    assert [r.kind for r in mapping_rows({"strong_match": ["no_match"]}, old_keys=OLD)] == ["merge"]
    assert [r.kind for r in mapping_rows({"a": ["c"], "b": ["c"]})] == ["merge", "merge"]
    assert [r.kind for r in mapping_rows({"no_match": ["no_match"]}, old_keys=OLD)] == ["kept"]


def test_the_effective_mapping_fills_in_kept_labels_and_drops_removed_ones():
    new = ["great_match", "no_match"]
    assert effective_mapping({"strong_match": ["great_match"]}, old_keys=OLD, new_keys=new) == {
        "strong_match": ["great_match"], "partial_match": [], "no_match": ["no_match"],
    }  # fmt: skip


def test_normalising_strips_keys_and_drops_repeats_and_blanks():
    assert normalize_mapping({" strong_match ": ["great_match", " great_match", ""], "x": "y"}) == {
        "strong_match": ["great_match"], "x": ["y"],
    }  # fmt: skip


def test_a_mapping_that_is_not_lists_is_refused_as_a_whole():
    errors = validate_mapping({"strong_match": 3}, old_keys=OLD, new_keys=OLD)
    assert [(e.section, e.field, e.message) for e in errors] == [
        ("label_mapping", None, "The label mapping must be {old key: [new key, …]}.")
    ]
    assert validate_mapping({}, old_keys=OLD, new_keys=OLD) == []


def test_translate_reads_one_key_gives_none_for_a_split_and_keeps_unknown_labels():
    translation = {"strong_match": ["great_match"], "partial_match": ["maybe", "stretch"]}
    assert translate("strong_match", translation) == "great_match"
    assert translate("partial_match", translation) is None
    assert translate("other", translation) == "other"
