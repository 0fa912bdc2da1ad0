"""Bulk writes for the hot paths: COPY on PostgreSQL, one executemany INSERT elsewhere.

Django's bulk_create builds a model instance and prepares every value of every row in Python,
which costs more than the database's own work at tens of thousands of rows a second.
"""
import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection, transaction


def copy_rows(model, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert plain tuples into the model's table, columns named as in the database."""
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            adapt = connection.ops.adapt_datetimefield_value  # stored as Django stores them
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})",
                               [[adapt(v) if isinstance(v, datetime) else v for v in row] for row in rows])


def reserve_ids(model, count: int) -> list[int]:
    """Primary keys for rows about to be copied, so that other rows can refer to them.

    PostgreSQL draws them from the table's sequence. SQLite has one writer at a time, so inside
    the writing transaction the next ids are simply the ones after the largest.
    """
    if count == 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                           [table, count])
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")
        start = cursor.fetchone()[0] + 1
        return list(range(start, start + count))


_CURSORS = itertools.count(1)  # a name per server-side cursor: several may be open at once


def stream_rows(sql: str, params: Sequence, *, chunk: int = 20_000):
    """Yield the rows of a query as plain tuples without loading them all: a server-side cursor on
    PostgreSQL (inside a transaction, as it requires), fetchmany elsewhere. No model or Django
    value conversion per row: for scans of millions of rows."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.connection.cursor(name=f"stream_rows_{next(_CURSORS)}") as cursor:
                cursor.itersize = chunk
                cursor.execute(sql, params)
                yield from cursor
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk):
            yield from rows
