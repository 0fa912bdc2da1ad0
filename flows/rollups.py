"""Exposure rollups: per day x group x category x purpose x destination x verdict, kept by the workers
in the transaction that judges a batch, so charts never scan flows."""
from collections import defaultdict
from datetime import date

from django.db import connection

from config.db import copy_rows

from .models import ExposureRollup, ExposureSeen, Verdict


def roll_up(organization, judged, memberships) -> None:
    """Add the batch to the per-day exposure rollups, counting each account once per day and cell,
    under the groups it was in when the flow occurred."""
    cells = defaultdict(lambda: [0, 0, set()])  # (day, group, category, purpose, destination, verdict)
    for flow, at, decision, _ in judged:
        _, account_ids, category, purpose, destination, _, volume = flow
        verdict = Verdict.PERMITTED if decision.allowed else Verdict.VIOLATION
        day = at.date()
        touched = {}
        for account_id in account_ids:
            for group in memberships.groups_at(account_id, at) or (0,):
                touched.setdefault(group, []).append(account_id)
        for group, members in touched.items():
            cell = cells[(day, group, category, purpose, destination, verdict)]
            cell[0] += 1
            cell[1] += volume
            cell[2].update(members)
    if not cells:
        return
    seen = {(day, account_id, category, purpose, destination, verdict)
            for (day, _, category, purpose, destination, verdict), (_, _, members) in cells.items()
            for account_id in members}
    new = _insert_seen(organization, seen)
    rows = []
    for (day, group, category, purpose, destination, verdict), (flows, volume, members) in cells.items():
        fresh = sum(1 for a in members if (day, a, category, purpose, destination, verdict) in new)
        rows.append((organization.pk, day, group, category, purpose, destination, verdict, flows, volume, fresh))
    _upsert_rollups(rows)


SEEN_COLUMNS = ("organization_id", "day", "account_id", "data_category", "purpose", "destination", "verdict")


def _insert_seen(organization, seen: set) -> set:
    """Insert (day, account, cell) facts not seen yet; returns the ones that were new.

    The facts are copied into a temporary table first, then inserted in one statement that skips
    the known ones and returns the rest: thousands of facts cost two statements.
    """
    if not seen:
        return set()
    table = ExposureSeen._meta.db_table
    columns = ", ".join(SEEN_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS batch_seen AS SELECT {columns} FROM {table} WHERE 1 = 0")
        cursor.execute("DELETE FROM batch_seen")
        copy_rows(_BatchSeen, SEEN_COLUMNS, [(organization.pk, *fact) for fact in seen])
        # "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM batch_seen WHERE true "
                       f"ON CONFLICT DO NOTHING RETURNING day, account_id, data_category, purpose, destination, "
                       f"verdict")
        rows = cursor.fetchall()
    return {(day if isinstance(day, date) else date.fromisoformat(day), account_id, category, purpose, destination, verdict)
            for day, account_id, category, purpose, destination, verdict in rows}


class _BatchSeen:
    """The temporary table `_insert_seen` copies into (for copy_rows, which needs a table name)."""

    class _meta:
        db_table = "batch_seen"


def _upsert_rollups(rows: list[tuple]) -> None:
    table = ExposureRollup._meta.db_table
    columns = "organization_id, day, group_key, data_category, purpose, destination, verdict, flows, volume, accounts"
    conflict = "organization_id, day, group_key, data_category, purpose, destination, verdict"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT ({conflict}) DO UPDATE SET "
                f"flows = {table}.flows + excluded.flows, volume = {table}.volume + excluded.volume, "
                f"accounts = {table}.accounts + excluded.accounts",
                [p for row in chunk for p in row])
