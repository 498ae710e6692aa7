"""Bulk updates that stay fast for thousands of rows.

Django's ``bulk_update`` writes one ``CASE WHEN id = … THEN …`` per field and row, which costs seconds of Python
for a chunk of a few thousand candidates. On PostgreSQL the rows go through ``COPY`` into a temporary table and
one ``UPDATE … FROM`` it: no statement with tens of thousands of placeholders for the driver to split and quote.
Other databases (the embedded SQLite) use Django's.
"""

from django.db import connection, models, transaction


def bulk_update(model: type[models.Model], objs: list, fields: list[str], batch_size: int = 2000) -> None:
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
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'CREATE TEMPORARY TABLE IF NOT EXISTS "{stage}" ({columns}) ON COMMIT DROP')
        with cursor.cursor.copy(f'COPY "{stage}" ({names}) FROM STDIN') as copy:
            for obj in objs:
                copy.write_row(
                    [obj.pk, *(f.get_db_prep_save(getattr(obj, f.attname), connection) for f in targets)]
                )
        cursor.execute(
            f'UPDATE "{meta.db_table}" AS t SET {assignments} FROM "{stage}" AS v '  # noqa: S608 - model names
            f'WHERE t."{meta.pk.column}" = v."pk"'
        )
        cursor.execute(f'DROP TABLE "{stage}"')
