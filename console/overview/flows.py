"""The flows as the overview counts them: rollup cells and violations per day, caught up by the log's size."""
from __future__ import annotations

from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import date

from django.db import connection, transaction

from audit.selectors import tree_size
from flows.models import Verdict
from flows.selectors import flow_days_in_leaves, rollup_rows, violations_per_day

from ..periods import first_day, start_of


@contextmanager
def _one_snapshot():
    """A transaction whose reads all see one snapshot of the database (REPEATABLE READ on PostgreSQL;
    nested in a caller's transaction, that transaction's level holds)."""
    with transaction.atomic():
        if connection.vendor == "postgresql" and len(connection.atomic_blocks) == 1:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


class FlowDays:
    """The exposure rollups' cells and the flows judged violations, per day since `first`.

    A worker writes a batch's flows, their rollups and their leaves in one transaction under the
    organization's chain head, so the log's size tells whether any of them changed, and the flows
    among the leaves added since tell on which days: only those days' rollup rows are read again,
    and their violations added.
    """

    def __init__(self, organization, first: date):
        self.first = first
        with _one_snapshot():  # the head and the flows it covers
            self.size = tree_size(organization)
            self.violations = Counter(violations_per_day(organization, start_of(first)))
        self.days: dict[date, dict] | None = None  # the rollup cells, read when first asked for
        self._keys: dict[tuple, tuple] = {}
        self._totals: dict[tuple[date, date], dict] = {}

    def catch_up(self, organization, today: date) -> None:
        size = tree_size(organization)
        if size != self.size:
            touched = set()
            for day, violations in flow_days_in_leaves(organization, from_leaf=self.size, to_leaf=size).items():
                touched.add(day)
                if violations and day >= self.first:
                    self.violations[day] += violations
            self.size = size
            touched = sorted(day for day in touched if day >= self.first)
            if touched and self.days is not None:  # read after the head: a day may be ahead, never behind
                fresh = self._read(organization, days=touched)
                for day in touched:
                    new, old = fresh.get(day, {}), self.days.get(day, {})
                    for (since, until), totals in self._totals.items():
                        if since <= day <= until:
                            _add_cells(totals, old, -1)
                            _add_cells(totals, new, 1)
                    self.days[day] = new
        stale = first_day(today)
        if stale > self.first:  # a day went by: forget the days no period shows any more
            self.first = stale
            self.violations = Counter({d: n for d, n in self.violations.items() if d >= stale})
            if self.days is not None:
                self.days = {d: cells for d, cells in self.days.items() if d >= stale}
            self._totals = {}

    def violations_between(self, since: date, until: date) -> dict[date, int]:
        return {day: n for day, n in self.violations.items() if since <= day <= until and n}

    def read_days(self, organization) -> None:
        """Read the rollup cells of every day since `first`."""
        self.days = self._read(organization, since=self.first)

    def cells(self, since: date, until: date, groups: dict) -> list[dict]:
        """The rows of `audit.selectors.exposure` for the period (flows, volume, violations and their
        volume per group x category x purpose x destination), from the rollups."""
        totals = self._totals.get((since, until))
        if totals is None:
            totals = self._totals[since, until] = {}
            for day, cells in self.days.items():
                if since <= day <= until:
                    _add_cells(totals, cells, 1)
        return [{"group": key[0] or None, "group_name": groups.get(key[0], "(no group)"), "data_category": key[1],
                 "purpose": key[2], "destination": key[3], "flows": flows, "volume": volume,
                 "violations": violations, "violation_volume": violation_volume}
                for key, (flows, volume, violations, violation_volume) in sorted(totals.items()) if flows]

    def _read(self, organization, **days) -> dict[date, dict]:
        cells = defaultdict(dict)
        keys = self._keys
        for day, *key, verdict, flows, volume in rollup_rows(organization, **days):
            key = tuple(key)
            key = keys.setdefault(key, key)  # one tuple per cell, whatever the number of days
            cell = cells[day].get(key)
            if cell is None:
                cell = cells[day][key] = [0, 0, 0, 0]
            cell[0] += flows
            cell[1] += volume
            if verdict == Verdict.VIOLATION:
                cell[2] += flows
                cell[3] += volume
        return cells


def _add_cells(totals: dict, cells: dict, sign: int) -> None:
    for key, values in cells.items():
        total = totals.get(key)
        if total is None:
            total = totals[key] = [0, 0, 0, 0]
        for i, value in enumerate(values):
            total[i] += sign * value

