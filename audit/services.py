"""The audit trail's writes: record a change (every app), chain the outbox, sign digests."""
import hashlib
import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from config.jsonvalue import CHAIN_LIMITS, JSONValueError, check_json_value
from config.tasks import enqueue_on_commit

from . import chain, ledger, signing
from .actors import Actor
from .models import AuditDigest, OutboxEntry, OutboxRepair, SigningKey

log = logging.getLogger(__name__)


class NotInTransaction(RuntimeError):
    """Raised when a change is recorded outside the transaction that makes it."""


def _require_transaction():
    if not transaction.get_connection().in_atomic_block:
        raise NotInTransaction("audit records must be written inside the change's transaction.atomic() block")


def _drain_after_commit(organization_id: int) -> None:
    """Ask a worker to chain this organization's outbox once the transaction commits (once per transaction)."""
    # if the broker is down the change is committed all the same; the sweep chains it later
    enqueue_on_commit("audit.tasks.drain_outbox", organization_id, once=True)


class UnchainableChange(DjangoValidationError):
    """A change whose audit record the chain could not hold: refused before its transaction commits."""


def _chainable(kind: str, actor: dict, *payloads) -> None:
    """Refuse, inside the change's transaction, what the drain could not chain later (docs/operations.md).
    The kind and actor are checked once, however many payloads share them."""
    try:
        chain.event_projection(kind=kind, actor=actor)
        for value in (actor, *payloads):
            check_json_value(value, CHAIN_LIMITS)
    except (JSONValueError, chain.Unchainable) as exc:
        raise UnchainableChange(f"This change cannot be recorded in the audit trail: {exc}") from None


def record(*, organization, kind: str, actor: Actor, payload: dict, subject_account=None,
           occurred_at=None) -> OutboxEntry:
    """Record one change. Call it inside the transaction that makes the change."""
    _require_transaction()
    actor_dict = actor.as_dict()
    _chainable(kind, actor_dict, payload)
    entry = OutboxEntry.objects.create(
        organization=organization, kind=kind, actor=actor_dict, subject_account=subject_account,
        payload=payload, occurred_at=occurred_at or timezone.now(),
    )
    _drain_after_commit(organization.pk)
    return entry


def record_many(*, organization, kind: str, actor: Actor, entries: Iterable[tuple[object, dict]],
                occurred_at=None) -> int:
    """Record a bulk change: one outbox row per (subject_account, payload), in one INSERT."""
    _require_transaction()
    when = occurred_at or timezone.now()
    actor_dict = actor.as_dict()
    entries = list(entries)
    _chainable(kind, actor_dict, *(payload for _, payload in entries))
    rows = [OutboxEntry(organization=organization, kind=kind, actor=actor_dict, subject_account=account,
                        payload=payload, occurred_at=when) for account, payload in entries]
    OutboxEntry.objects.bulk_create(rows, batch_size=1000)
    if rows:
        _drain_after_commit(organization.pk)
    return len(rows)


def drain_outbox(organization_id: int, *, batch_size: int | None = None) -> int:
    """Chain every pending outbox row of one organization; returns how many were chained.

    Each batch is one transaction holding the chain head's row lock: the events are appended
    and their outbox rows deleted together, so a worker killed halfway leaves either the whole
    batch chained or none of it, and a concurrent drainer of the same organization waits.

    A row that cannot be chained stops the chain just before it: the rows ahead of it are
    chained, it and everything after it wait, and the head records the stall (`ChainHead.stalled_*`)
    so that pipeline_status, the verify answer and the console say so. Skipping it would reorder
    the evidence. The next drain tries the row again, so a repaired row (or a fixed release)
    resumes the chain by itself.
    """
    size = batch_size or settings.AUDIT_DRAIN_BATCH
    total = 0
    while True:
        try:
            chained, more = _drain_batch(organization_id, size)
        except (OperationalError, InterfaceError):
            raise  # the database itself is in trouble: the task retries, nothing is stalled
        except DatabaseError as exc:
            if size > 1:
                size = 1  # the database refused a value no check foresaw: find its row, one at a time
                continue
            _stall_at_oldest(organization_id, f"{type(exc).__name__}: {exc}".strip())
            return total
        total += chained
        if not more:
            return total


def _drain_batch(organization_id: int, batch_size: int) -> tuple[int, bool]:
    """Chain up to batch_size pending rows in one transaction; returns (chained, whether to go on)."""
    with transaction.atomic():
        head = ledger.locked_head(organization_id)
        rows = list(OutboxEntry.objects.filter(organization_id=organization_id).order_by("id")[:batch_size])
        if head.stalled_outbox_id is not None and (not rows or rows[0].pk != head.stalled_outbox_id):
            ledger.clear_stall(head)  # the row it was stopped at is gone (removed by hand): nothing to wait for
        if not rows:
            return 0, False
        appended = ledger.append(head, [_entry(row) for row in rows])
        if appended.count:
            OutboxEntry.objects.filter(pk__in=[row.pk for row in rows[:appended.count]]).delete()
    return appended.count, appended.stopped_at is None and len(rows) == batch_size


def _stall_at_oldest(organization_id: int, error: str) -> None:
    with transaction.atomic():
        head = ledger.locked_head(organization_id)
        row = OutboxEntry.objects.filter(organization_id=organization_id).order_by("id").first()
        if row is not None:
            ledger.record_stall(head, _entry(row), error)


def _entry(row: OutboxEntry) -> ledger.Entry:
    return ledger.Entry(row.kind, row.occurred_at, row.actor, row.subject_account_id, row.payload, row.pk)


class NothingToRepair(ValueError):
    """The named outbox row is not one the chain is stopped at."""


def repair_outbox_entry(*, organization_id: int, outbox_id: int, reason: str, repaired_by: str) -> OutboxRepair:
    """Let a stalled chain go on past a row it cannot chain, without editing the chain (docs/operations.md).

    The row keeps its place, kind, instant and subject; its payload (and an actor the chain could
    not hold) is replaced by a stand-in that names the repair, why and by whom, and the SHA-256 of
    the original text, which an append-only OutboxRepair row keeps. The next drain chains it.
    """
    for text, name in ((reason, "reason"), (repaired_by, "repaired_by")):
        if not text.strip() or "\x00" in text or len(text) > 2000:
            raise ValueError(f"{name} must be 1 to 2,000 characters without NUL")
    with transaction.atomic():
        head = ledger.locked_head(organization_id)
        entry = OutboxEntry.objects.filter(organization_id=organization_id, pk=outbox_id).first()
        oldest = OutboxEntry.objects.filter(organization_id=organization_id).order_by("id").values_list(
            "pk", flat=True).first()
        if entry is None or entry.pk != oldest:
            raise NothingToRepair(f"outbox row {outbox_id} is not the oldest pending row of organization "
                                  f"{organization_id} (that is {oldest})")
        error = head.stall_error if head.stalled_outbox_id == entry.pk else _unchainable_reason(entry)
        if not error:
            raise NothingToRepair(f"outbox row {outbox_id} can be chained as it is; nothing to repair")
        actor_text, payload_text = _stored_json_text(entry.pk)
        now = timezone.now()
        repair = OutboxRepair.objects.create(
            organization_id=organization_id, outbox_id=entry.pk, kind=entry.kind, original_actor=actor_text,
            original_payload=payload_text, original_sha256=hashlib.sha256(payload_text.encode()).hexdigest(),
            error=error.replace("\x00", "\\u0000"), reason=reason, repaired_by=repaired_by, repaired_at=now)
        try:
            _chainable(entry.kind, entry.actor)
            actor = entry.actor
        except UnchainableChange:
            actor = {"kind": "system", "id": None, "name": "unchainable actor (repaired)"}
        OutboxEntry.objects.filter(pk=entry.pk).update(actor=actor, payload={"repaired": {
            "repair": repair.pk, "original_sha256": repair.original_sha256,
            "original_bytes": len(payload_text.encode()), "error": repair.error[:500], "reason": reason,
            "repaired_by": repaired_by, "repaired_at": chain.iso(now)}})
    return repair


def _unchainable_reason(entry: OutboxEntry) -> str:
    """Why the row could not be chained, by the same checks `record` makes; "" if it could."""
    try:
        _chainable(entry.kind, entry.actor, entry.payload)
    except UnchainableChange as exc:
        return "; ".join(exc.messages)
    return ""


def _stored_json_text(outbox_id: int) -> tuple[str, str]:
    """The actor and payload columns as the database holds them: text, whatever the JSON inside."""
    table = OutboxEntry._meta.db_table
    cast = "::text" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT actor{cast}, payload{cast} FROM {table} WHERE id = %s", [outbox_id])
        actor, payload = cursor.fetchone()
    return str(actor), str(payload)


def organizations_with_stale_outbox(older_than: timedelta) -> list[int]:
    cutoff = timezone.now() - older_than
    return list(OutboxEntry.objects.filter(occurred_at__lte=cutoff)
                .values_list("organization_id", flat=True).distinct().order_by("organization_id"))


def _ensure_public_key() -> tuple[str, str]:
    pem = signing.public_pem(signing.signing_key())
    fingerprint = signing.fingerprint(pem)
    SigningKey.objects.get_or_create(fingerprint=fingerprint,
                                     defaults={"algorithm": signing.ALGORITHM, "public_key_pem": pem})
    return fingerprint, pem


@transaction.atomic
def write_digest(organization) -> AuditDigest:
    """Sign the organization's chain head and tree head as they stand now (format 2): a signed tree head
    that also covers the events since the last digest, and chains to the previous one."""
    head = ledger.locked_head(organization.pk)
    previous = AuditDigest.objects.filter(organization=organization).order_by("-period_end", "-id").first()
    first_seq = (previous.last_seq if previous else 0) + 1
    count = head.seq - first_seq + 1
    fingerprint, _ = _ensure_public_key()
    now = timezone.now()
    statement = {
        "version": 2,
        "organization": organization.pk, "organization_slug": organization.slug,
        "period_start": chain.iso(previous.period_end) if previous else None,
        "period_end": chain.iso(now),
        "first_seq": first_seq if count > 0 else None, "last_seq": head.seq, "event_count": max(count, 0),
        "head_hash": head.hash, "tree_size": head.tree_size, "root_hash": head.tree_root,
        "algorithm": signing.ALGORITHM, "key_fingerprint": fingerprint,
        "previous_signature": previous.signature if previous else "",
        "previous_head_hash": hashlib.sha256(previous.body.encode()).hexdigest() if previous else "",
    }
    body = chain.canonical_json(statement)
    return AuditDigest.objects.create(
        organization=organization, period_start=previous.period_end if previous else None,
        period_end=now, first_seq=statement["first_seq"], last_seq=head.seq,
        event_count=statement["event_count"], head_hash=head.hash, tree_size=head.tree_size,
        root_hash=head.tree_root, algorithm=signing.ALGORITHM, key_fingerprint=fingerprint,
        previous_signature=statement["previous_signature"], signature=signing.sign(body), body=body)
