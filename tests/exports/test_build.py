"""Building an export: files, splits without leakage, soft labels, determinism, checksums, immutability."""

import hashlib
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError

from exports import services
from exports.models import DatasetExport
from exports.selection import ExportError
from labeling.models import Candidate, LabelingRun


def build(run, user, **kwargs) -> DatasetExport:
    export, created = services.export_create(user=user, version=run.policy_version, runs=[run], **kwargs)
    assert created
    return services.export_build(export_id=export.pk)


def lines(export, name):
    path = services.export_dir(export) / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_an_export_holds_every_approved_label_once_in_three_formats(export_run, engineer):
    export = build(export_run, engineer)
    assert export.status == "ready", export.error
    rows = lines(export, "labels.jsonl")
    approved = Candidate.objects.filter(run=export_run).exclude(approved_label="")
    assert len(rows) == approved.count() == export.manifest["rows"]
    by_pair = {c.pair_id: c for c in approved}
    for row in rows:
        candidate = by_pair[row["pair_id"]]
        assert row["label"] == candidate.approved_label
        assert row["approved_by"] == candidate.approved_by
        assert set(row["soft_label"]) == set(export_run.policy_version.label_keys)
        assert sum(row["soft_label"].values()) == pytest.approx(1.0)
        assert row["split"] in ("train", "validation", "test")
    adjudicated = next(r for r in rows if r["approved_by"] == "adjudicator")
    assert adjudicated["adjudicator"] == "olivia" and adjudicated["reviewers"] == ["ann", "ann2"]
    assert adjudicated["label"] == "no_match"
    assert adjudicated["agreement"] == pytest.approx(0.5)  # ann said strong, ann2 said no
    table = pq.read_table(services.export_dir(export) / "labels.parquet")
    assert table.num_rows == len(rows)
    assert table.column("label").to_pylist() == [r["label"] for r in rows]
    assert table.schema.field("soft_label").type.num_fields == 3  # a struct of floats, not a JSON string
    skills = table.schema.field("member").type.field("skills").type
    assert pa.types.is_list(skills) and skills.value_type == pa.string()
    assert table.column("pair_id").to_pylist() == [r["pair_id"] for r in rows]


def test_no_member_appears_in_two_splits_and_the_ratios_are_roughly_kept(export_run, engineer):
    export = build(export_run, engineer, split={"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 7})
    splits_of: dict[str, set] = {}
    for row in lines(export, "labels.jsonl"):
        splits_of.setdefault(row["member_id"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    assert len({s for v in splits_of.values() for s in v}) >= 2  # 12 members do not all land in one split
    counts = export.manifest["counts"]["by_split"]
    assert sum(counts.values()) == export.manifest["rows"]


def test_grouping_by_job_keeps_jobs_in_one_split_too(export_run, engineer):
    export = build(export_run, engineer, split={"group_by_job": True, "seed": 3})
    rows = lines(export, "labels.jsonl")
    assert export.manifest["split_groups"] == 1  # every member shares a job with every other here
    assert "1 connected group of members and jobs" in (services.export_dir(export) / "README.md").read_text()
    for key in ("member_id", "job_id"):
        seen: dict[str, set] = {}
        for row in rows:
            seen.setdefault(row[key], set()).add(row["split"])
        assert all(len(s) == 1 for s in seen.values()), key


def test_the_same_recipe_gives_byte_identical_files(export_run, engineer):
    first = build(export_run, engineer, split={"seed": 11})
    second = build(export_run, engineer, split={"seed": 11})
    for name in ("labels.jsonl", "labels.parquet", "openai_chat.jsonl"):
        a = (services.export_dir(first) / name).read_bytes()
        b = (services.export_dir(second) / name).read_bytes()
        assert a == b, name
    other_seed = build(export_run, engineer, split={"seed": 12})
    assert [r["split"] for r in lines(other_seed, "labels.jsonl")] != [r["split"] for r in lines(first, "labels.jsonl")]


def test_the_manifest_checksums_match_the_files_and_the_archive_holds_them(export_run, engineer):
    export = build(export_run, engineer)
    folder = services.export_dir(export)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == export.manifest
    names = {f["name"] for f in manifest["files"]}
    assert names == {"labels.jsonl", "labels.parquet", "openai_chat.jsonl", "README.md"}
    for entry in manifest["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])
    assert manifest["policy"]["content_hash"] == export_run.policy_version.content_hash
    assert manifest["runs"][0]["id"] == export_run.pk and manifest["runs"][0]["provider"] == "heuristic"
    assert manifest["review"]["adjudicated"] == 1
    with tarfile.open(folder / export.archive_name) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers()}
        assert set(members) == names | {"manifest.json"}
        assert tar.extractfile(members["labels.jsonl"]).read() == (folder / "labels.jsonl").read_bytes()
    assert hashlib.sha256((folder / export.archive_name).read_bytes()).hexdigest() == export.archive_sha256
    card = (folder / "README.md").read_text()
    assert f"export {export.pk}" in card and export_run.policy_version.content_hash in card


def test_the_chat_file_passes_the_fine_tuning_format_checks(export_run, engineer):
    from labeling.teacher.messages import user_message

    export = build(export_run, engineer)
    examples = lines(export, "openai_chat.jsonl")
    labels = {r["pair_id"]: r for r in lines(export, "labels.jsonl")}
    assert len(examples) == len(labels)
    system = export_run.system_prompt
    for example, row in zip(examples, labels.values(), strict=True):
        messages = example["messages"]
        assert set(example) == {"messages"}
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"] and set(m) == {"role", "content"} for m in messages)
        assert messages[0]["content"] == system
        member = {"member_id": row["member_id"], **row["member"]}
        job = {"job_id": row["job_id"], **row["job"]}
        assert messages[1]["content"] == user_message(member, job)  # exactly what the teacher saw
        answer = json.loads(messages[2]["content"])
        assert answer == {"label": row["label"], "rationale": row["rationale"], "cited_rules": row["cited_rules"]}


def test_filters_select_what_they_say(export_run, engineer):
    human = build(export_run, engineer, filters={"human_only": True})
    rows = lines(human, "labels.jsonl")
    assert len(rows) == 3 and {r["approved_by"] for r in rows} == {"reviewers", "adjudicator"}
    reason = build(export_run, engineer, filters={"reasons": ["low_confidence"]})
    assert {r["pair_id"] for r in lines(reason, "labels.jsonl")} == {r["pair_id"] for r in rows}
    agreed = build(export_run, engineer, filters={"human_only": True, "min_agreement": 0.9})
    assert len(lines(agreed, "labels.jsonl")) == 2  # the adjudicated item had 50 % agreement
    nothing = build(export_run, engineer, filters={"gold_only": True})
    assert nothing.status == "ready" and nothing.manifest["rows"] == 0


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"split": {"train": 0.9, "validation": 0.2, "test": 0}}, "train", "add up to 1"),
        ({"split": {"seed": "abc"}}, "seed", "whole number"),
        ({"filters": {"min_confidence": 2}}, "min_confidence", "between 0 and 1"),
        ({"filters": {"reasons": ["bored"]}}, "reasons", "Unknown routing reason 'bored'"),
        ({"filters": {"colour": "red"}}, "colour", "Unknown filter"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_created(export_run, engineer, kwargs, field, message):
    with pytest.raises(ExportError, match=message) as error:
        services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run], **kwargs)
    assert error.value.field == field
    assert DatasetExport.objects.count() == 0


def test_a_built_export_never_changes_and_deleting_is_recorded(export_run, engineer):
    export = build(export_run, engineer)
    export.filters = {"human_only": True}
    with pytest.raises(ValidationError, match="never changes"):
        export.save()
    export.refresh_from_db()
    path = services.export_dir(export) / "labels.jsonl"
    assert path.stat().st_mode & 0o222 == 0  # read-only for everyone (root ignores modes, so check the bits)
    services.export_delete(export=export, user=engineer)
    export.refresh_from_db()
    assert (export.status, export.deleted_by) == ("deleted", engineer) and export.deleted_at
    assert not services.export_dir(export).exists()
    assert export.manifest["rows"] > 0  # the record of what existed stays
    export.status = "ready"
    with pytest.raises(ValidationError):
        export.save()


def test_a_failed_build_leaves_a_clear_error_and_no_files(export_run, engineer, monkeypatch):
    from exports.writers import labels_parquet

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(labels_parquet, "write", broken)
    export = build(export_run, engineer)
    assert export.status == "failed" and "disk full" in export.error
    root = services.exports_root()
    assert not any(root.iterdir())  # neither a staging folder nor a final one


def test_the_same_idempotency_key_returns_the_same_export(export_run, engineer):
    first, created = services.export_create(user=engineer, version=export_run.policy_version, idempotency_key="k1")
    again, created_again = services.export_create(
        user=engineer, version=export_run.policy_version, idempotency_key="k1"
    )
    assert created and not created_again and again.pk == first.pk
    assert list(first.runs.all()) == [export_run]  # no runs given: every run of the version


def test_a_run_still_labelling_cannot_be_exported(export_run, engineer):
    LabelingRun.objects.filter(pk=export_run.pk).update(status="running")
    export_run.refresh_from_db()
    with pytest.raises(ExportError, match="still labelling"):
        services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    assert DatasetExport.objects.count() == 0


def test_the_database_splits_exactly_as_the_python_reference(export_run, engineer):
    from exports.selection import SplitRecipe
    from exports.splits import split_of

    recipe = {"train": 0.34, "validation": 0.33, "test": 0.33, "seed": 2024}
    export = build(export_run, engineer, split=recipe)
    rows = lines(export, "labels.jsonl")
    expected = {r["member_id"]: split_of(SplitRecipe.from_dict(recipe), r["member_id"]) for r in rows}
    assert {r["member_id"]: r["split"] for r in rows} == expected
    assert set(expected.values()) == {"train", "validation", "test"}


def test_gold_scores_and_draft_previews_are_not_exported(export_run, engineer):
    LabelingRun.objects.filter(pk=export_run.pk).update(purpose="gold_score")
    export_run.refresh_from_db()
    with pytest.raises(ExportError, match="evaluation, not labels to train on"):
        services.export_create(user=engineer, version=export_run.policy_version, runs=[export_run])
    with pytest.raises(ExportError, match="has no labeling runs"):
        services.export_create(user=engineer, version=export_run.policy_version)


def test_any_text_survives_into_every_format_exactly(export_run, engineer):
    """Texts are quoted by the database, known values written as constants: quotes, backslashes, control
    characters, '%', non-ASCII text and a label or seniority outside the known sets all come back exactly."""
    candidate = Candidate.objects.filter(run=export_run, approved_by="teacher").order_by("id").first()
    pair = candidate.pair
    hostile = 'Dev "lead" \\ back\\slash\ttab\x01ctl 100% it\'s Zürich 東京 </script>'
    pair.member.__class__.objects.filter(pk=pair.member_id).update(
        headline=hostile, location="50%", seniority="wizard", summary="line one\nline two\r\n"
    )  # fmt: skip
    Candidate.objects.filter(pk=candidate.pk).update(approved_label='odd "label"', routing="auto_accepted")
    export = build(export_run, engineer)
    assert export.status == "ready", export.error
    row = next(r for r in lines(export, "labels.jsonl") if r["pair_id"] == pair.pk)
    assert row["member"]["headline"] == hostile
    assert row["member"]["location"] == "50%"
    assert row["member"]["seniority"] == "wizard"
    assert row["member"]["summary"] == "line one\nline two\r\n"
    assert row["label"] == 'odd "label"'
    table = pq.read_table(services.export_dir(export) / "labels.parquet")
    parquet_row = table.filter(pa.compute.equal(table.column("pair_id"), pair.pk)).to_pylist()[0]
    assert parquet_row["member"]["headline"] == hostile and parquet_row["label"] == 'odd "label"'


def test_the_parquet_file_loads_in_pandas_and_hugging_face_datasets_with_its_types(export_run, engineer, tmp_path):
    """What a distillation pipeline does with the file: nested columns arrive as dicts and lists, not JSON text."""
    import datasets
    import pandas as pd

    export = build(export_run, engineer)
    path = services.export_dir(export) / "labels.parquet"
    rows = lines(export, "labels.jsonl")
    frame = pd.read_parquet(path)
    assert len(frame) == len(rows)
    assert list(frame["label"]) == [r["label"] for r in rows]
    assert list(frame.iloc[0]["member"]["skills"]) == rows[0]["member"]["skills"]
    assert frame.iloc[0]["soft_label"] == pytest.approx(rows[0]["soft_label"])

    dataset = datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "hf"))
    assert dataset.num_rows == len(rows)
    assert dataset.features["soft_label"] == {k: datasets.Value("float64") for k in rows[0]["soft_label"]}
    assert dataset.features["member"]["skills"] == datasets.List(datasets.Value("string"))
    train = dataset.filter(lambda row: row["split"] == "train")
    assert train.num_rows == sum(r["split"] == "train" for r in rows)
    assert dataset[0]["cited_rules"] == rows[0]["cited_rules"] and dataset[0]["pair_id"] == rows[0]["pair_id"]
