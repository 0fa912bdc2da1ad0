"""Exposure as the overview counts it: each account's latest days of AI exposure, caught up by record id."""
from __future__ import annotations

from collections import Counter
from datetime import date

from flows.selectors import (exposure_records_after_day, exposure_records_since, last_exposure_record_id,
                             latest_exposure_days)


class ExposureDays:
    """For each account, the latest day up to today (since `first`) its data reached AI training as
    customer content, AI training as service-generated data, and any AI purpose: from the exposure
    records (ExposureSeen). Whether an account was exposed in a period ending today is whether that
    day falls in it, so distinct accounts over any such period are counted without the records.

    Records inserted since are read by id: a worker inserts an organization's records under its
    chain head, so their ids grow in the order they commit. Records of a day after today (a
    reporter's clock ahead) count from that day on.
    """

    def __init__(self, organization, kinds: tuple[frozenset, frozenset, frozenset], first: date, today: date):
        self.kinds, self.first = kinds, first
        content, training, ai = kinds
        # first: a record inserted while the rest is read is read again later, which changes nothing
        self.seen_id = last_exposure_record_id(organization)
        self.last: dict[int, tuple] = {}
        self.content, self.generated = Counter(), Counter()  # day -> accounts whose latest it is
        rows = latest_exposure_days(organization, content=content, training=training, ai=ai, first=first, last=today)
        for account_id, *days in rows:
            self._set(account_id, None, tuple(days))
        self.later = exposure_records_after_day(organization, purposes=ai, day=today)

    def catch_up(self, organization, today: date) -> dict[int, tuple | None]:
        """Take in the records inserted since; returns the accounts whose days moved, with their days before."""
        rows = exposure_records_since(organization, purposes=self.kinds[2], after_id=self.seen_id)
        if rows:
            self.seen_id = rows[-1][0]
        later, self.later = self.later, []
        moved = {}
        for account_id, day, category, purpose in [*later, *(row[1:] for row in rows)]:
            if day > today:
                self.later.append((account_id, day, category, purpose))
            elif day >= self.first:
                old = self.last.get(account_id)
                moved.setdefault(account_id, old)
                self._set(account_id, old, self._with(old, day, category, purpose))
        return {account_id: old for account_id, old in moved.items() if self.last.get(account_id) != old}

    def trained(self, since: date) -> tuple[int, int]:
        """Accounts whose customer content, and whose service data, reached AI training since `since`."""
        return (sum(n for day, n in self.content.items() if day >= since),
                sum(n for day, n in self.generated.items() if day >= since))

    def _with(self, days: tuple | None, day: date, category: str, purpose: str) -> tuple:
        content, generated, ai = days or (None, None, None)
        if purpose in self.kinds[1]:
            if category in self.kinds[0]:
                content = max(content or day, day)
            else:
                generated = max(generated or day, day)
        return content, generated, max(ai or day, day)

    def _set(self, account_id: int, old: tuple | None, new: tuple) -> None:
        if old == new:
            return
        for counter, i in ((self.content, 0), (self.generated, 1)):
            before, after = old and old[i], new[i]
            if before != after:
                if before:
                    counter[before] -= 1
                if after:
                    counter[after] += 1
        self.last[account_id] = new
