"""The one way any app records a change for the audit trail."""
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from .actors import Actor
from .models import OutboxEntry


class NotInTransaction(RuntimeError):
    """Raised when a change is recorded outside the transaction that makes it."""


def _require_transaction():
    if not transaction.get_connection().in_atomic_block:
        raise NotInTransaction("audit records must be written inside the change's transaction.atomic() block")


def record(*, organization, kind: str, actor: Actor, payload: dict, subject_account=None,
           occurred_at=None) -> OutboxEntry:
    """Record one change. Call it inside the transaction that makes the change."""
    _require_transaction()
    return OutboxEntry.objects.create(
        organization=organization, kind=kind, actor=actor.as_dict(), subject_account=subject_account,
        payload=payload, occurred_at=occurred_at or timezone.now(),
    )


def record_many(*, organization, kind: str, actor: Actor, entries: Iterable[tuple[object, dict]],
                occurred_at=None) -> int:
    """Record a bulk change: one outbox row per (subject_account, payload), in one INSERT."""
    _require_transaction()
    when = occurred_at or timezone.now()
    rows = [OutboxEntry(organization=organization, kind=kind, actor=actor.as_dict(), subject_account=account,
                        payload=payload, occurred_at=when) for account, payload in entries]
    OutboxEntry.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
