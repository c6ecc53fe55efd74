"""Write many rows in one statement: `UPDATE ... FROM jsonb_to_recordset(%s)` and
`INSERT ... SELECT ... FROM jsonb_to_recordset(%s)`.

A batch of ticks writes ~50-200 runs, Tick rows and paper books at once. Django's
`bulk_update` builds one CASE WHEN expression per field and row, which costs more Python
time than the whole strategy step; a VALUES list or one array per column costs as much in
quoting (an array of JSON documents is escaped character by character). Here the rows
travel as ONE JSON document, typed by PostgreSQL on the way in (`jsonb_to_recordset` with
each column's own type), so the statement is the same size whatever the number of rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Field, JSONField, Model


def rows_update(objs: Sequence[Model], fields: Sequence[str]) -> int:
    """Set `fields` of every object in `objs` (one model, saved rows) to their values in
    memory, in one UPDATE; returns how many rows were updated."""
    if not objs:
        return 0
    meta = type(objs[0])._meta
    pk = meta.pk
    assert pk is not None
    columns: list[Any] = [pk, *(meta.get_field(name) for name in fields)]
    names = [column.column for column in columns]
    rows = [{c.column: _plain(c, getattr(obj, c.attname)) for c in columns} for obj in objs]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(n)} = v.{quote(n)}" for n in names[1:])
    record = ", ".join(f"{quote(c.column)} {c.db_type(connection)}" for c in columns)
    # Only names and types from the model's own metadata and placeholders are joined in.
    key = quote(names[0])
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments}"  # noqa: S608
        f" FROM jsonb_to_recordset(%s::jsonb) AS v({record}) WHERE t.{key} = v.{key}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows)])
        return int(cursor.rowcount)


def rows_insert(objs: Sequence[Model]) -> None:
    """Insert `objs` (one model, new rows) in one INSERT, their ids left to the database
    (the objects do not get them: for rows nobody reads back in the same transaction)."""
    if not objs:
        return
    meta = type(objs[0])._meta
    columns: list[Any] = [f for f in meta.concrete_fields if not f.primary_key]
    rows = [{c.column: _plain(c, c.pre_save(obj, True)) for c in columns} for obj in objs]
    quote = connection.ops.quote_name
    names = ", ".join(quote(c.column) for c in columns)
    record = ", ".join(f"{quote(c.column)} {c.db_type(connection)}" for c in columns)
    # Only names and types from the model's own metadata and placeholders are joined in.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({names}) SELECT {names}"  # noqa: S608
        f" FROM jsonb_to_recordset(%s::jsonb) AS v({record})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows)])


def _plain(field: Field[Any, Any], value: Any) -> Any:
    """`value` as JSON that PostgreSQL reads back into the column: a JSON column's document
    as it is (through its own encoder), exact decimals and times as text."""
    if isinstance(field, JSONField):
        return value if field.encoder is None else json.loads(json.dumps(value, cls=field.encoder))
    if value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    prepared = field.get_db_prep_save(value, connection)
    return prepared.isoformat() if isinstance(prepared, datetime) else prepared
