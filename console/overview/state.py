"""What the overview keeps per process: one `OverviewState` per organization, with its lock."""
from __future__ import annotations

import gc
import threading
from datetime import date, datetime

from governance.engine import CUSTOMER_CONTENT
from governance.selectors import CatalogNames

from ..periods import first_day
from .accounts import AccountSet
from .exposure import ExposureDays
from .flows import FlowDays
from .tallies import Tallies


def overview_state(organization) -> OverviewState:
    """This process's `OverviewState` of the organization (keyed by its creation too: a test's
    rolled-back organization may come back under the same id)."""
    key = (organization.pk, organization.created_at)
    with _states_lock:
        state = _states.pop(key, None) or OverviewState()
        _states[key] = state
        while len(_states) > STATES_KEPT:
            del _states[next(iter(_states))]
    return state


class OverviewState:
    """What the overview counts for one organization, kept by this process between requests.

    Four parts, each brought up to date by `refresh` from what changed since the previous request:
    the accounts (which are active), the flows' rollup cells and violations per day (`FlowDays`,
    by the chain head), each account's latest exposure days (`ExposureDays`, by exposure record
    id) and the counts over accounts from the compiled policy (`Tallies`, by the accounts it
    changed for). Built on the organization's first overview in the process; a lock makes one
    request at a time read or change it.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.accounts: AccountSet | None = None
        self.flows: FlowDays | None = None
        self.exposure: ExposureDays | None = None
        self.tallies: Tallies | None = None

    def refresh(self, organization, compiled, names: CatalogNames, now: datetime, since: date) -> None:
        """Bring every part up to `compiled` and `now`, for periods from `since`."""
        today = now.date()
        self.accounts = AccountSet.read(organization, self.accounts)
        built = self.refresh_flows(organization, since, today, cells=True)
        catalog = compiled.snapshot.catalog
        kinds = (frozenset(k for k, kind in names.category_kinds.items() if kind == CUSTOMER_CONTENT),
                 frozenset(catalog.training_purposes()), frozenset(catalog.ai_purposes))
        moved = {}
        if self.exposure is None or self.exposure.kinds != kinds or since < self.exposure.first:
            self.exposure, self.tallies = ExposureDays(organization, kinds, min(since, first_day(today)), today), None
            built = True
        else:
            moved = self.exposure.catch_up(organization, today)
        tallies = self.tallies
        if (tallies is None or tallies.rules is not compiled.snapshot.org_rules or since < tallies.first
                or (tallies.valid_until is not None and now >= tallies.valid_until)):
            self.tallies = Tallies(organization, compiled, self.accounts.active, self.exposure.last, now,
                                   min(since, first_day(today)))
            built = True
        else:
            tallies.update(organization, compiled, self.accounts.active, self.exposure.last, now, moved)
        if built:
            # As for the compiled policy: keep the cyclic collector from walking these many objects
            # on every collection (they hold no reference cycles; replacing them still frees them).
            gc.freeze()

    def refresh_flows(self, organization, since: date, today: date, *, cells: bool = False) -> bool:
        """Bring the flows' part up to date (the flows page counts violations from it alone), with the
        rollup cells if asked for; returns whether it was built anew."""
        built = self.flows is None or since < self.flows.first
        if built:
            self.flows = FlowDays(organization, min(since, first_day(today)))
        else:
            self.flows.catch_up(organization, today)
        if cells and self.flows.days is None:
            self.flows.read_days(organization)
            built = True
        return built


_states: dict[tuple, OverviewState] = {}
_states_lock = threading.Lock()
STATES_KEPT = 64


def forget_overview_states() -> None:
    """Drop what this process keeps for the overview (the next view of each organization counts it all again)."""
    with _states_lock:
        _states.clear()
