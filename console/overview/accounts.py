"""The organization's accounts as the overview counts them: which exist, which are active."""
from __future__ import annotations

from dataclasses import dataclass

from accounts.selectors import account_count, account_ids, inactive_account_ids


@dataclass(frozen=True)
class AccountSet:
    """The organization's accounts and its active ones. Accounts are never deleted, so while their
    number stands still the ids are the same, and only the inactive ones are read again."""

    total: int
    ids: frozenset
    inactive: frozenset
    active: frozenset

    @classmethod
    def read(cls, organization, known: AccountSet | None) -> AccountSet:
        total = account_count(organization)
        inactive = inactive_account_ids(organization)
        if known is not None and known.total == total:
            return known if known.inactive == inactive else cls(total, known.ids, inactive, known.ids - inactive)
        ids = account_ids(organization)
        return cls(len(ids), ids, inactive, ids - inactive)
