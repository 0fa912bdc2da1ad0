"""Consent as the decision engine sees it: per account and category x purpose, a timeline. No ORM here.

At an instant, the basis for a pair is the latest grant or revocation covering it (a feature
consent covers the feature's pairs). A grant is stale from the effective date of a later terms
version that requires re-consent for the pair.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

GRANT, REVOKE = "grant", "revoke"
# The mechanisms of a consent that is a basis all the same, but not freely given: the person could
# not really say no (an admin on their behalf, a join-or-leave prompt).
NOT_FREELY_GIVEN = frozenset({"admin_on_behalf", "join_or_leave_prompt"})

# Basis states
VALID, MISSING, REVOKED, STALE = "valid", "missing", "revoked", "stale"
# A basis as reports and pages count it: a valid one is freely given or not.
BASIS_FREELY_GIVEN, BASIS_NOT_FREELY_GIVEN = "freely_given", "not_freely_given"

Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    id: int
    action: str
    mechanism: str
    occurred_at: datetime
    terms_version: str | None = None
    terms_effective_at: datetime | None = None
    feature: str | None = None

    @property
    def freely_given(self) -> bool:
        return self.mechanism not in NOT_FREELY_GIVEN


@dataclass(frozen=True, slots=True)
class Reconsent:
    """A terms version that requires re-consent for a pair from its effective date."""

    version: str
    effective_at: datetime


@dataclass(frozen=True, slots=True)
class Basis:
    state: str
    record: ConsentRecord | None = None
    stale_since: Reconsent | None = None

    @property
    def valid(self) -> bool:
        return self.state == VALID


BASIS_MISSING = Basis(MISSING)
# A basis as it is counted and shown: a valid one split by whether it was freely given
BASIS_KEYS = (BASIS_FREELY_GIVEN, BASIS_NOT_FREELY_GIVEN, STALE, REVOKED, MISSING)


def basis_key(basis: Basis) -> str:
    """A consent basis in one of `BASIS_KEYS`: freely given, not freely given, stale (after a terms
    change), revoked, missing."""
    if basis.state == VALID:
        return BASIS_FREELY_GIVEN if basis.record.freely_given else BASIS_NOT_FREELY_GIVEN
    return basis.state


def _occurred_at(record: ConsentRecord) -> datetime:
    return record.occurred_at


@dataclass
class ConsentIndex:
    # account id -> pair -> records in time order (most timelines hold one or two events)
    timelines: dict[int, dict[Pair, list[ConsentRecord]]] = field(default_factory=dict)
    reconsent: dict[Pair, tuple[list[datetime], list[Reconsent]]] = field(default_factory=dict)
    last_event_id: int = 0

    def add(self, account_id: int, pairs, record: ConsentRecord) -> None:
        """Add a consent event; imported history may arrive out of time order."""
        per_account = self.timelines.get(account_id)
        if per_account is None:
            per_account = self.timelines[account_id] = {}
        for pair in pairs:
            records = per_account.get(pair)
            if records is None:
                per_account[pair] = [record]
            elif record.occurred_at >= records[-1].occurred_at:
                records.append(record)
            else:
                records.insert(bisect_right(records, record.occurred_at, key=_occurred_at), record)
        if record.id > self.last_event_id:
            self.last_event_id = record.id

    def extended(self, additions) -> ConsentIndex:
        """A new index with `additions` ((account_id, pairs, record) in any order) added; this one
        is left as it is, for the decisions still reading it. Only the timelines the additions
        touch are copied: catching up on a few events costs little, whatever the index's size."""
        timelines = dict(self.timelines)
        copied: set[int] = set()
        index = ConsentIndex(timelines, self.reconsent, self.last_event_id)
        for account_id, pairs, record in additions:
            if account_id not in copied and account_id in timelines:
                timelines[account_id] = {pair: list(records) for pair, records in timelines[account_id].items()}
            copied.add(account_id)
            index.add(account_id, pairs, record)
        return index

    def add_reconsent(self, pair: Pair, reconsent: Reconsent) -> None:
        times, versions = self.reconsent.setdefault(pair, ([], []))
        at = bisect_right(times, reconsent.effective_at)
        times.insert(at, reconsent.effective_at)
        versions.insert(at, reconsent)

    def basis(self, account_id: int, pair: Pair, at: datetime) -> Basis:
        per_account = self.timelines.get(account_id)
        records = per_account.get(pair) if per_account else None
        if records is None:
            return BASIS_MISSING
        record = records[-1]
        if record.occurred_at > at:
            index = bisect_right(records, at, key=_occurred_at)
            if index == 0:
                return BASIS_MISSING
            record = records[index - 1]
        if record.action == REVOKE:
            return Basis(REVOKED, record)
        stale = self.stale_since(pair, record, at)
        return Basis(STALE, record, stale) if stale else Basis(VALID, record)

    def next_reconsent(self, at: datetime) -> datetime | None:
        """When the next terms version requiring re-consent takes effect after `at` (bases change then)."""
        upcoming = [times[i] for times, _ in self.reconsent.values() if (i := bisect_right(times, at)) < len(times)]
        return min(upcoming, default=None)

    def stale_since(self, pair: Pair, record: ConsentRecord, at: datetime) -> Reconsent | None:
        """The latest re-consent terms version in force at `at` that the grant predates, if any."""
        versions = self.reconsent.get(pair)
        if versions is None:
            return None
        times, reconsents = versions
        index = bisect_right(times, at)
        if index == 0:
            return None
        latest = reconsents[index - 1]
        if record.terms_effective_at is None or record.terms_effective_at < latest.effective_at:
            return latest
        return None
