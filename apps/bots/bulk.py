"""Write many rows' fields in one statement: `UPDATE ... FROM (VALUES ...)`.

A batch of ticks writes ~50 runs, Tick rows and paper books at once; Django's
`bulk_update` builds one CASE WHEN expression per field and row, which costs more Python
time than the whole strategy step. Here every value is a parameter, prepared by its own
field (`get_db_prep_save`) and cast to the column's type.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Model


def rows_update(objs: Sequence[Model], fields: Sequence[str]) -> int:
    """Set `fields` of every object in `objs` (one model, saved rows) to their values in
    memory, in one UPDATE; returns how many rows were updated."""
    if not objs:
        return 0
    meta = type(objs[0])._meta
    pk = meta.pk
    assert pk is not None
    columns = [pk, *(meta.get_field(name) for name in fields)]
    casts = ", ".join(f"%s::{column.db_type(connection)}" for column in columns)  # type: ignore[attr-defined]
    names = [column.column for column in columns]  # type: ignore[attr-defined]
    params: list[object] = []
    for obj in objs:
        for column in columns:
            value = getattr(obj, column.attname)  # type: ignore[attr-defined]
            params.append(column.get_db_prep_save(value, connection))  # type: ignore[attr-defined]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(n)} = v.{quote(n)}" for n in names[1:])
    values = ", ".join([f"({casts})"] * len(objs))
    # Only names from the model's own metadata and placeholders are joined in.
    key = quote(names[0])
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM (VALUES {values})"  # noqa: S608
        f" AS v({', '.join(quote(n) for n in names)}) WHERE t.{key} = v.{key}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
