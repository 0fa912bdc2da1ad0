"""What the pipeline owes: work the database holds that no worker has finished yet. For on-call.

The database, not the broker, holds pending work (here the outbox; flows.operations has stored
flow batches and webhook deliveries), and beat's sweeps re-drive what waits too long; so the
backlog read here is the truth about lag whatever happened to Redis or the workers.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, OuterRef, Subquery
from django.utils import timezone

from .models import AuditDigest, AuditEvent, ChainHead, OutboxEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StalledChain:
    """An organization whose chain stops at an outbox row it cannot chain (docs/operations.md)."""
    organization_id: int
    organization_slug: str
    next_seq: int  # the seq the row would take
    outbox_id: int
    since: datetime | None
    error: str
    pending: int  # outbox rows waiting behind it, itself included

    def as_dict(self) -> dict:
        return {"organization": self.organization_slug, "organization_id": self.organization_id,
                "seq": self.next_seq, "outbox_id": self.outbox_id,
                "since": self.since.isoformat() if self.since else None, "error": self.error,
                "pending": self.pending}


def stalled_chains() -> list[StalledChain]:
    heads = (ChainHead.objects.filter(stalled_outbox_id__isnull=False).order_by("organization_id")
             .values_list("organization_id", "organization__slug", "seq", "stalled_outbox_id", "stalled_since",
                          "stall_error"))
    pending = dict(OutboxEntry.objects.filter(organization_id__in=[head[0] for head in heads])
                   .values_list("organization_id").annotate(n=Count("id")).values_list("organization_id", "n"))
    return [StalledChain(org_id, slug, seq + 1, outbox_id, since, error, pending.get(org_id, 0))
            for org_id, slug, seq, outbox_id, since, error in heads]


@dataclass(frozen=True)
class Backlog:
    name: str
    pending: int
    oldest: datetime | None  # when the oldest pending item was made
    detail: str = ""

    def age(self, now: datetime) -> timedelta | None:
        return None if self.oldest is None else now - self.oldest


def log_stalled_chains() -> list[int]:
    """One ERROR line per stalled chain; the sweep calls it every round so a stall is never quiet."""
    stalled = stalled_chains()
    for chain in stalled:
        log.error("audit chain of organization %s stalled at seq %s since %s: outbox row %s cannot be chained "
                  "(%s change(s) waiting): %s. Repair: manage.py repair_outbox_entry (docs/operations.md)",
                  chain.organization_slug, chain.next_seq, chain.since.isoformat() if chain.since else "?",
                  chain.outbox_id, chain.pending, chain.error)
    return [chain.organization_id for chain in stalled]


def outbox_backlog() -> Backlog:
    outbox = OutboxEntry.objects.aggregate(n=Count("id"), oldest=Min("occurred_at"),
                                           organizations=Count("organization", distinct=True))
    return Backlog("audit outbox", outbox["n"], outbox["oldest"],
                   f"{outbox['organizations']} organization(s); age is the oldest change's own instant")


def digest_backlog() -> Backlog:
    overdue = overdue_digests()
    return Backlog("signed digests", len(overdue), min(overdue.values(), default=None),
                   "organizations with events past their last digest, which is older than two digest periods")


def overdue_digests() -> dict[int, datetime]:
    """Organizations with chained events that no signed digest covers yet, the first of them recorded
    more than two digest periods ago: organization id -> when that first unsigned event was recorded."""
    cutoff = timezone.now() - timedelta(minutes=2 * settings.AUDIT_DIGEST_MINUTES)
    signed = AuditDigest.objects.filter(organization=OuterRef("organization")).order_by("-last_seq")
    heads = (ChainHead.objects.filter(seq__gt=0).annotate(signed_seq=Subquery(signed.values("last_seq")[:1]))
             .values_list("organization_id", "seq", "signed_seq"))
    overdue = {}
    for organization_id, seq, signed_seq in heads:
        if seq <= (signed_seq or 0):
            continue
        first_unsigned = (AuditEvent.objects.filter(organization_id=organization_id, seq=(signed_seq or 0) + 1)
                          .values_list("recorded_at", flat=True).first())
        if first_unsigned is not None and first_unsigned < cutoff:
            overdue[organization_id] = first_unsigned
    return overdue
