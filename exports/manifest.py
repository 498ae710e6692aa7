"""The manifest (``manifest.json``) and the dataset card (``README.md``) of an export: lineage, recipe, counts,
review figures and the sha256 and size of every file."""

import hashlib
from pathlib import Path

from django.template.loader import render_to_string

from labeling.models import LabelingRun
from labeling.selectors import agreement_figures, runs_agreement
from labeling.selectors.trust_rates import runs_trust_rates, total_rates

from .models import DatasetExport

MANIFEST_VERSION = 1


def file_entry(path: Path, *, rows: int | None = None) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    entry = {"name": path.name, "size": path.stat().st_size, "sha256": digest.hexdigest()}
    if rows is not None:
        entry["rows"] = rows
    return entry


def _run(run: LabelingRun, trust: dict) -> dict:
    snapshot = run.config_snapshot or {}
    return {
        "id": run.pk,
        "status": run.status,
        "teacher_config": run.teacher_config.name,
        "provider": snapshot.get("provider", run.teacher_config.provider),
        "model": snapshot.get("model", run.teacher_config.model),
        "temperature": snapshot.get("temperature"),
        "samples_per_pair": snapshot.get("samples_per_pair"),
        "logprobs": snapshot.get("logprobs"),
        "pairs": run.pairs_total,
        "cost": str(run.cost),
        "thresholds": run.thresholds,
        "reviewers_per_item": run.reviewers_per_item,
        "checks": run.checks,
        "trust": trust,
    }


def build_manifest(export: DatasetExport, *, counts: dict, rows: int, approved_by: dict, left_out: dict,
                   system_prompt_sha256: str, files: list[dict]) -> dict:  # fmt: skip
    """``left_out``: the chosen runs' candidates not exported, by reason (``exports.selection.left_out``)."""
    version = export.policy_version
    runs = export.runs.select_related("teacher_config").order_by("pk")
    trust = runs_trust_rates(run_ids=[run.pk for run in runs])
    review = agreement_figures(runs_agreement(version=version, runs=runs))
    split_counts = {split: sum(labels.values()) for split, labels in counts.items()}
    label_counts: dict[str, int] = {}
    for labels in counts.values():
        for label, n in labels.items():
            label_counts[label] = label_counts.get(label, 0) + n
    return {
        "manifest_version": MANIFEST_VERSION,
        "export_id": export.pk,
        "created_at": export.created_at.isoformat(),
        "created_by": export.created_by.get_username() if export.created_by else None,
        "policy": {
            "slug": version.policy.slug,
            "name": version.policy.name,
            "version": version.number,
            "content_hash": version.content_hash,
            "labels": version.label_keys,
            "system_prompt_sha256": system_prompt_sha256,
        },
        "runs": [_run(run, trust[run.pk].as_dict()) for run in runs],
        "trust": total_rates(trust.values()).as_dict(),
        "left_out": left_out,
        "filters": export.filters,
        "split": export.split,
        "rows": rows,
        "counts": {"by_split": split_counts, "by_label": dict(sorted(label_counts.items())), "by_split_label": counts},
        "approved_by": approved_by,
        "review": {
            key: review[key]
            for key in (
                "reviews",
                "reviewers",
                "items_reviewed",
                "items_multi",
                "adjudicated",
                "human_approved",
                "krippendorff_alpha",
                "cohen_kappa",
                "teacher_vs_human",
            )
        },  # fmt: skip
        "files": files,
    }


def render_card(manifest: dict) -> str:
    """The human-readable dataset card (markdown; user text in it is sanitised when the site renders it)."""
    labels = manifest["policy"]["labels"]
    table = [
        (split, manifest["counts"]["by_split"][split], [counts.get(label, 0) for label in labels])
        for split, counts in manifest["counts"]["by_split_label"].items()
    ]
    return render_to_string("exports/dataset_card.md", {"m": manifest, "split_table": table})
