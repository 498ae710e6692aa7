"""Bulk updates that stay fast for thousands of rows.

Django's ``bulk_update`` writes one ``CASE WHEN id = … THEN …`` per field and row, which costs seconds of Python
for a chunk of a few thousand candidates. On PostgreSQL we send ``UPDATE … FROM (VALUES …)`` instead: one
statement per batch, each value cast to its column's type. Other databases (the embedded SQLite) use Django's.
"""

from django.db import connection, models


def bulk_update(model: type[models.Model], objs: list, fields: list[str], batch_size: int = 2000) -> None:
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields, batch_size=batch_size)
        return
    meta = model._meta
    targets = [meta.get_field(name) for name in fields]
    pk_type = meta.pk.db_type(connection)
    row = "(" + ", ".join([f"%s::{pk_type}", *(f"%s::{f.db_type(connection)}" for f in targets)]) + ")"
    assignments = ", ".join(f'"{f.column}" = v."{f.column}"' for f in targets)
    names = ", ".join(['"pk"', *(f'"{f.column}"' for f in targets)])
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch_size):
            batch = objs[start : start + batch_size]
            params: list = []
            for obj in batch:
                params.append(obj.pk)
                params.extend(f.get_db_prep_save(getattr(obj, f.attname), connection) for f in targets)
            cursor.execute(
                f'UPDATE "{meta.db_table}" AS t SET {assignments} '  # noqa: S608 - names come from the model
                f"FROM (VALUES {', '.join([row] * len(batch))}) AS v({names}) "
                f'WHERE t."{meta.pk.column}" = v."pk"',
                params,
            )
