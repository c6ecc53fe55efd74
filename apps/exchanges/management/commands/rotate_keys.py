"""Re-encrypt every encrypted column under the primary FIELD_ENCRYPTION_KEYS key (SEC-6).

Rotation: prepend a new key to FIELD_ENCRYPTION_KEYS, run this, then drop the old key.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from apps.audit.services import audit_record
from apps.common.crypto import reencrypt
from apps.common.fields import EncryptedTextField


def _encrypted_columns() -> list[tuple[str, str, str]]:
    """(table, primary key column, encrypted column) for every EncryptedTextField."""
    return [
        (model._meta.db_table, model._meta.pk.column, field.column)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


def _rotate_table(table: str, pk_column: str, columns: list[str]) -> tuple[int, int]:
    quote = connection.ops.quote_name
    selected = ", ".join(quote(column) for column in columns)
    with connection.cursor() as cursor:
        # Raw SQL: the ORM would decrypt the tokens, and the rotation never needs plaintext.
        cursor.execute(
            f"SELECT {quote(pk_column)}, {selected} FROM {quote(table)} FOR UPDATE"  # noqa: S608
        )
        rows = cursor.fetchall()
        tokens = 0
        for pk, *values in rows:
            rotated = [reencrypt(value) if value else value for value in values]
            tokens += sum(1 for value in values if value)
            assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
            cursor.execute(
                f"UPDATE {quote(table)} SET {assignments} WHERE {quote(pk_column)} = %s",  # noqa: S608
                [*rotated, pk],
            )
    return len(rows), tokens


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the first FIELD_ENCRYPTION_KEYS key."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        by_table: dict[tuple[str, str], list[str]] = {}
        for table, pk_column, column in _encrypted_columns():
            by_table.setdefault((table, pk_column), []).append(column)
        rows = tokens = 0
        for (table, pk_column), columns in sorted(by_table.items()):
            table_rows, table_tokens = _rotate_table(table, pk_column, columns)
            rows, tokens = rows + table_rows, tokens + table_tokens
        audit_record(
            event_type="crypto.keys_rotated",
            actor=None,
            actor_label="manage.py rotate_keys",
            data={"rows": rows, "tokens": tokens, "tables": sorted(t for t, _ in by_table)},
        )
        self.stdout.write(f"Re-encrypted {tokens} secrets in {rows} rows.")
