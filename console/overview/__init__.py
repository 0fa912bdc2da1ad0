"""The overview's counts: kept by each process per organization, brought up to date on every view.

The overview counts over every account and up to 90 days of exposure (distinct people whose data
reached AI training, each group's consent basis and who may be used now, consents in force).
Counted from the rows on every view, that takes minutes for a large organization (docs/scaling.md),
so a process keeps the counts (`state.OverviewState`) and each view reads only what changed since
the previous one. One module per part kept: `accounts` (which are active), `flows` (rollup cells and
violations per day), `exposure` (each account's latest exposure days), `tallies` (counts over the
accounts from the compiled policy); `page` turns them into what the overview shows.

The console calls `overview_of` and `violation_count`; `forget_overview_states` starts a process
afresh (benchmarks, tests).
"""
from .page import overview_of, violation_count
from .state import forget_overview_states

__all__ = ["forget_overview_states", "overview_of", "violation_count"]
