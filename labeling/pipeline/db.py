"""Bulk writes of a run: samples (upserted on run, pair and sample index), cache entries, candidate updates.

On PostgreSQL rows go through ``COPY`` into a temporary table and one ``INSERT … SELECT … ON CONFLICT`` (or
``UPDATE … FROM``): no per-row round trip and no per-value parameter parsing, which matters when a chunk writes
thousands of answers while its requests are still in flight. Django's ``bulk_update`` would write one
``CASE WHEN id = … THEN …`` per field and row, seconds of Python for a few thousand candidates. Elsewhere (the
embedded SQLite) Django's ``bulk_create`` / ``bulk_update`` do the same.
"""

import json

from django.db import connection, models, transaction
from django.utils import timezone

from ..models import ResponseCache, TeacherSample
from ..teacher import TeacherAnswer

#: Sample columns (besides run and creation time) with their PostgreSQL types.
SAMPLE_COLUMNS = {
    "pair_id": "bigint", "sample_index": "integer", "label": "text", "rationale": "text", "cited_rules": "jsonb",
    "label_probs": "jsonb", "raw_response": "text", "input_tokens": "integer", "output_tokens": "integer",
    "latency_ms": "integer", "attempts": "integer", "cached": "boolean", "error_kind": "text", "error": "text",
    "judge": "jsonb",
}  # fmt: skip
UPDATED = [c for c in SAMPLE_COLUMNS if c not in ("pair_id", "sample_index")]


def _sample_row(key, a: TeacherAnswer, *, as_json_text: bool) -> tuple:
    def dump(value):
        return json.dumps(value) if as_json_text and value is not None else value

    return (
        key[0], key[1], a.label, a.rationale, dump(a.cited_rules), dump(a.label_probs), a.raw, a.input_tokens,
        a.output_tokens, a.latency_ms, a.attempts, a.cached, a.error_kind, a.error, dump(a.judge),
    )  # fmt: skip


def store_samples(run_id: int, answers: dict) -> None:
    """Upsert ``answers`` ({(pair id, sample index): TeacherAnswer}) as the run's samples (inside a transaction)."""
    if not answers:
        return
    if connection.vendor != "postgresql":
        TeacherSample.objects.bulk_create(
            [TeacherSample(run_id=run_id, **dict(zip(SAMPLE_COLUMNS, _sample_row(k, a, as_json_text=False),
                                                     strict=True)))
             for k, a in answers.items()],
            update_conflicts=True,
            unique_fields=["run", "pair", "sample_index"],
            update_fields=UPDATED,
            batch_size=1000,
        )  # fmt: skip
        return
    names = ", ".join(SAMPLE_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATED)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS labeling_sample_stage "
            f"({', '.join(f'{c} {t}' for c, t in SAMPLE_COLUMNS.items())}) ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy(f"COPY labeling_sample_stage ({names}) FROM STDIN") as copy:
            for key, answer in answers.items():
                copy.write_row(_sample_row(key, answer, as_json_text=True))
        cursor.execute(
            f"INSERT INTO {TeacherSample._meta.db_table} (run_id, {names}, created_at) "  # noqa: S608
            f"SELECT %s, {names}, %s FROM labeling_sample_stage "
            f"ON CONFLICT (run_id, pair_id, sample_index) DO UPDATE SET {updates}",
            [run_id, timezone.now()],
        )
        cursor.execute("TRUNCATE labeling_sample_stage")


def teacher_payload(a: TeacherAnswer) -> dict:
    """What the cache keeps of a teacher's answer (``requests.cached_answers`` reads it back)."""
    return {"label": a.label, "rationale": a.rationale, "cited_rules": a.cited_rules, "label_probs": a.label_probs,
            "raw": a.raw}  # fmt: skip


def store_cache(model: str, keys: dict, answers: list, payload=teacher_payload) -> None:
    """Cache valid, freshly paid answers (``payload(answer)`` is what is kept); an entry already there is kept."""
    if not answers:
        return
    entries = [(keys[a.key], model, a.input_tokens, a.output_tokens, json.dumps(payload(a))) for a in answers]
    if connection.vendor != "postgresql":
        ResponseCache.objects.bulk_create(
            [ResponseCache(key=k, model=m, input_tokens=i, output_tokens=o, answer=json.loads(j))
             for k, m, i, o, j in entries],
            ignore_conflicts=True,
            batch_size=1000,
        )  # fmt: skip
        return
    table = ResponseCache._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS labeling_cache_stage "
            "(key text, model text, input_tokens bigint, output_tokens bigint, answer jsonb) ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy("COPY labeling_cache_stage FROM STDIN") as copy:
            for entry in entries:
                copy.write_row(entry)
        cursor.execute(
            f"INSERT INTO {table} (key, model, input_tokens, output_tokens, answer, created_at) "  # noqa: S608
            "SELECT key, model, input_tokens, output_tokens, answer, %s FROM labeling_cache_stage "
            "ON CONFLICT (key) DO NOTHING",
            [timezone.now()],
        )
        cursor.execute("TRUNCATE labeling_cache_stage")


def bulk_update(model: type[models.Model], objs: list, fields: list[str], batch_size: int = 2000) -> None:
    """Write ``fields`` of the model instances ``objs`` (matched by primary key) in one statement per call."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields, batch_size=batch_size)
        return
    meta = model._meta
    targets = [meta.get_field(name) for name in fields]
    stage = f"bulk_stage_{meta.db_table}"
    columns = ", ".join(
        [f'"pk" {meta.pk.db_type(connection)}', *(f'"{f.column}" {f.db_type(connection)}' for f in targets)]
    )
    names = ", ".join(['"pk"', *(f'"{f.column}"' for f in targets)])
    assignments = ", ".join(f'"{f.column}" = v."{f.column}"' for f in targets)
    # Each field's converter and attribute looked up once, not once per row and field (25 fields × 1,000 rows).
    converters = [(f.attname, f.get_db_prep_save) for f in targets]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'CREATE TEMPORARY TABLE IF NOT EXISTS "{stage}" ({columns}) ON COMMIT DROP')
        with cursor.cursor.copy(f'COPY "{stage}" ({names}) FROM STDIN') as copy:
            for obj in objs:
                copy.write_row([obj.pk, *[prep(getattr(obj, name), connection) for name, prep in converters]])
        cursor.execute(
            f'UPDATE "{meta.db_table}" AS t SET {assignments} FROM "{stage}" AS v '  # noqa: S608 - model names
            f'WHERE t."{meta.pk.column}" = v."pk"'
        )
        cursor.execute(f'DROP TABLE "{stage}"')
