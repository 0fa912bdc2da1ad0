"""The organization's accounts as the overview counts them: which exist, which are active."""
from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Account


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
        accounts = Account.objects.filter(organization=organization)
        total = accounts.count()
        inactive = frozenset(accounts.filter(active=False).values_list("pk", flat=True))
        if known is not None and known.total == total:
            return known if known.inactive == inactive else cls(total, known.ids, inactive, known.ids - inactive)
        ids = frozenset(accounts.values_list("pk", flat=True).iterator(chunk_size=10_000))
        return cls(len(ids), ids, inactive, ids - inactive)
