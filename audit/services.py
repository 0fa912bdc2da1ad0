"""The audit trail's writes: record a change (every app), chain the outbox, sign digests."""
import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.db import copy_rows

from . import chain, signing
from .actors import Actor
from .models import AuditDigest, AuditEvent, ChainHead, EventKind, OutboxEntry, SigningKey, WebhookEndpoint

log = logging.getLogger(__name__)


EVENT_COLUMNS = ("organization_id", "seq", "kind", "occurred_at", "recorded_at", "actor_kind", "actor_name",
                 "subject_account_id", "outbox_id", "body", "prev_hash", "hash")


class NotInTransaction(RuntimeError):
    """Raised when a change is recorded outside the transaction that makes it."""


def _require_transaction():
    if not transaction.get_connection().in_atomic_block:
        raise NotInTransaction("audit records must be written inside the change's transaction.atomic() block")


def _drain_after_commit(organization_id: int) -> None:
    """Ask a worker to chain this organization's outbox once the transaction commits (once per transaction)."""
    connection = transaction.get_connection()
    if any(getattr(callback, "audit_organization_id", None) == organization_id
           for _, callback, _ in connection.run_on_commit):
        return

    def enqueue():
        from .tasks import drain_outbox
        drain_outbox.delay(organization_id)

    enqueue.audit_organization_id = organization_id
    # robust: if the broker is down the change is committed all the same; the sweep chains it later.
    transaction.on_commit(enqueue, robust=True)


def record(*, organization, kind: str, actor: Actor, payload: dict, subject_account=None,
           occurred_at=None) -> OutboxEntry:
    """Record one change. Call it inside the transaction that makes the change."""
    _require_transaction()
    entry = OutboxEntry.objects.create(
        organization=organization, kind=kind, actor=actor.as_dict(), subject_account=subject_account,
        payload=payload, occurred_at=occurred_at or timezone.now(),
    )
    _drain_after_commit(organization.pk)
    return entry


def record_many(*, organization, kind: str, actor: Actor, entries: Iterable[tuple[object, dict]],
                occurred_at=None) -> int:
    """Record a bulk change: one outbox row per (subject_account, payload), in one INSERT."""
    _require_transaction()
    when = occurred_at or timezone.now()
    rows = [OutboxEntry(organization=organization, kind=kind, actor=actor.as_dict(), subject_account=account,
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
    """
    batch_size = batch_size or settings.AUDIT_DRAIN_BATCH
    ChainHead.objects.get_or_create(organization_id=organization_id)
    total = 0
    while True:
        with transaction.atomic():
            head = ChainHead.objects.select_for_update().get(organization_id=organization_id)
            entries = list(OutboxEntry.objects.filter(organization_id=organization_id).order_by("id")[:batch_size])
            if not entries:
                return total
            events, recorded_at = [], timezone.now()
            seq, prev = head.seq, head.hash
            for entry in entries:
                seq += 1
                body = chain.event_body(organization_id=organization_id, seq=seq, kind=entry.kind,
                                        occurred_at=entry.occurred_at, recorded_at=recorded_at, actor=entry.actor,
                                        subject_account=entry.subject_account_id, payload=entry.payload)
                digest = chain.link_hash(prev, body)
                events.append((organization_id, seq, entry.kind, entry.occurred_at, recorded_at,
                               entry.actor.get("kind", ""), entry.actor.get("name", ""), entry.subject_account_id,
                               entry.pk, body, prev, digest))
                prev = digest
            copy_rows(AuditEvent, EVENT_COLUMNS, events)
            OutboxEntry.objects.filter(pk__in=[entry.pk for entry in entries]).delete()
            ChainHead.objects.filter(pk=head.pk).update(seq=seq, hash=prev, updated_at=recorded_at)
        total += len(entries)
        if len(entries) < batch_size:
            return total


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
    """Sign the organization's chain head as it stands now, covering the events since the last digest."""
    ChainHead.objects.get_or_create(organization_id=organization.pk)
    head = ChainHead.objects.select_for_update().get(organization_id=organization.pk)
    previous = AuditDigest.objects.filter(organization=organization).order_by("-period_end", "-id").first()
    first_seq = (previous.last_seq if previous else 0) + 1
    count = head.seq - first_seq + 1
    fingerprint, _ = _ensure_public_key()
    now = timezone.now()
    statement = {
        "organization": organization.pk, "organization_slug": organization.slug,
        "period_start": chain.iso(previous.period_end) if previous else None,
        "period_end": chain.iso(now),
        "first_seq": first_seq if count > 0 else None, "last_seq": head.seq, "event_count": max(count, 0),
        "head_hash": head.hash, "algorithm": signing.ALGORITHM, "key_fingerprint": fingerprint,
        "previous_signature": previous.signature if previous else "",
    }
    body = chain.canonical_json(statement)
    return AuditDigest.objects.create(
        organization=organization, period_start=previous.period_end if previous else None,
        period_end=now, first_seq=statement["first_seq"], last_seq=head.seq,
        event_count=statement["event_count"], head_hash=head.hash, algorithm=signing.ALGORITHM,
        key_fingerprint=fingerprint, previous_signature=statement["previous_signature"],
        signature=signing.sign(body), body=body)


def _webhook_state(endpoint: WebhookEndpoint) -> dict:
    return {"id": endpoint.pk, "url": endpoint.url, "active": endpoint.active}  # never the secret


@transaction.atomic
def create_webhook(*, organization, actor: Actor, url: str, secret: str, active: bool = True) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.create(organization=organization, url=url, secret=secret, active=active)
    record(organization=organization, kind=EventKind.WEBHOOK_CHANGED, actor=actor,
           payload={"action": "created", "after": _webhook_state(endpoint)})
    return endpoint


@transaction.atomic
def update_webhook(*, endpoint: WebhookEndpoint, actor: Actor, **changes) -> WebhookEndpoint:
    before = _webhook_state(endpoint)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    endpoint.save()
    record(organization=endpoint.organization, kind=EventKind.WEBHOOK_CHANGED, actor=actor,
           payload={"action": "changed", "before": before, "after": _webhook_state(endpoint),
                    "secret_rotated": "secret" in changes})
    return endpoint


@transaction.atomic
def delete_webhook(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    record(organization=endpoint.organization, kind=EventKind.WEBHOOK_CHANGED, actor=actor,
           payload={"action": "deleted", "before": _webhook_state(endpoint)})
    endpoint.delete()
