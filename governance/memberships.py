"""Group membership over time, as the decision engine sees it: the groups an account was in at an
instant. No ORM here.

Most accounts' groups have not changed since they were provisioned, so only the instant of each
account's last change is kept for them: at or after it, the groups are today's. The periods of
every membership are kept only for the accounts whose past differs from that.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

NO_GROUPS: tuple[int, ...] = ()
NO_GROUP = 0  # the key counts use for the accounts in no group, as the exposure rollups do


def members_by_group(account_groups: dict, account_ids) -> dict[int, list[int]]:
    """Group id -> its accounts among `account_ids`; NO_GROUP holds the accounts in no group."""
    members = defaultdict(list)
    for account_id in account_ids:
        for group_id in account_groups.get(account_id, ()) or (NO_GROUP,):
            members[group_id].append(account_id)
    return members


@dataclass
class MembershipHistory:
    # account id -> its groups now (sorted); the compiled snapshot's own dict
    current: dict[int, tuple[int, ...]] = field(default_factory=dict)
    # account id -> the last instant its groups changed (a membership started or ended)
    changed_at: dict[int, datetime] = field(default_factory=dict)
    # account id -> (group id, from, until or None) of each membership, where needed (see above)
    periods: dict[int, tuple[tuple[int, datetime, datetime | None], ...]] = field(default_factory=dict)

    def groups_at(self, account_id: int, at: datetime) -> tuple[int, ...]:
        changed = self.changed_at.get(account_id)
        if changed is None or at >= changed:
            return self.current.get(account_id, NO_GROUPS)
        periods = self.periods.get(account_id)
        if periods is None:  # its groups all started together, at `changed`, and none ended
            return NO_GROUPS
        return tuple(sorted(group for group, start, until in periods
                            if start <= at and (until is None or at < until)))

    def with_accounts(self, account_ids, their_history: MembershipHistory) -> MembershipHistory:
        """A new history in which `account_ids` have the entries of `their_history` (built from
        their rows alone); this one is left as it is, for the decisions still reading it."""
        current, changed_at, periods = dict(self.current), dict(self.changed_at), dict(self.periods)
        for mine, theirs in ((current, their_history.current), (changed_at, their_history.changed_at),
                             (periods, their_history.periods)):
            for account_id in account_ids:
                if account_id in theirs:
                    mine[account_id] = theirs[account_id]
                else:
                    mine.pop(account_id, None)
        return MembershipHistory(current, changed_at, periods)

    @classmethod
    def build(cls, current_rows, past_rows) -> MembershipHistory:
        """From (account, group, added_at) of today's memberships, in group order, and (account,
        group, started_at, ended_at) of ended ones."""
        history = cls()
        periods: dict[int, list] = {}
        instants: dict[datetime, datetime] = {}  # one object per instant: a change gives all its rows one
        for account_id, group_id, added_at in current_rows:
            history.current.setdefault(account_id, [])
            history.current[account_id].append(group_id)
            periods.setdefault(account_id, []).append((group_id, instants.setdefault(added_at, added_at), None))
        for account_id, group_id, started_at, ended_at in past_rows:
            periods.setdefault(account_id, []).append((group_id, started_at, ended_at))
        history.current = {account_id: tuple(groups) for account_id, groups in history.current.items()}
        for account_id, spans in periods.items():
            history.changed_at[account_id] = max(until or start for _, start, until in spans)
            if any(until is not None for _, _, until in spans) or len({start for _, start, _ in spans}) > 1:
                history.periods[account_id] = tuple(spans)
        return history

