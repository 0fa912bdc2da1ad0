"""Reads of the audit trail: events, verification, digests, export."""
import json
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from accounts.models import Group
from config.db import stream_rows

from .chain import Verification, verify_links
from .models import AuditDigest, AuditEvent, ChainHead, ExposureRollup, SigningKey, Verdict
from .verification import DIGESTS_FILE, EVENTS_FILE, KEYS_FILE, verify_digests

STREAM_CHUNK = 10_000


def events_of(organization):
    return AuditEvent.objects.filter(organization=organization)


def latest_digest(organization) -> AuditDigest | None:
    return AuditDigest.objects.filter(organization=organization).order_by("-period_end", "-id").first()


def public_keys() -> dict[str, str]:
    return dict(SigningKey.objects.values_list("fingerprint", "public_key_pem"))


def verify_chain(organization) -> Verification:
    """Recompute the organization's chain from its first event, against its signed digests and its head.

    Drains may commit while it runs: it walks the chain only up to the head it read, and on
    PostgreSQL reads everything in one REPEATABLE READ snapshot.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql" and not _inside_outer_transaction():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # Digests before the head: every digest read was signed at or below the head read next,
        # so a digest past the head means the head went back, not that a drain moved on.
        digests = AuditDigest.objects.filter(organization=organization).order_by("period_end", "id")
        problem, anchors = verify_digests(digests.values_list("body", "signature"), public_keys())
        if problem:
            return Verification().fail(None, problem)
        head = ChainHead.objects.filter(organization=organization).values_list("seq", "hash").first()
        head_seq = head[0] if head else None
        table = AuditEvent._meta.db_table
        bound = "" if head_seq is None else f" AND seq <= {int(head_seq)}"
        rows = stream_rows(f"SELECT seq, prev_hash, hash, body, kind, occurred_at, subject_account_id FROM {table} "
                           f"WHERE organization_id = %s{bound} ORDER BY seq", [organization.pk], chunk=STREAM_CHUNK)
        result = verify_links(_aware(rows), organization_id=organization.pk, anchors=anchors)
    if result.valid and head is not None and head != (result.head_seq, result.head_hash):
        result.fail(result.head_seq + 1, "the chain head names events that are missing")
    return result


def _inside_outer_transaction() -> bool:
    """Whether the atomic block just opened is nested (SET TRANSACTION must come first in a transaction)."""
    return len(connection.savepoint_ids) > 0 or connection.atomic_blocks[:-1] != []
def _aware(rows):
    """SQLite hands instants back as naive UTC text; PostgreSQL as aware datetimes."""
    if connection.vendor == "postgresql":
        yield from rows
        return
    for seq, prev, digest, body, kind, occurred_at, subject in rows:
        instant = datetime.fromisoformat(occurred_at) if isinstance(occurred_at, str) else occurred_at
        yield seq, prev, digest, body, kind, instant.replace(tzinfo=dt_timezone.utc), subject


def export_chain(organization, directory: Path) -> dict:
    """Write the events (JSON Lines), the digests and the public keys for offline verification."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    with (directory / EVENTS_FILE).open("w", encoding="utf-8") as out:
        rows = (events_of(organization).order_by("seq").values_list("seq", "prev_hash", "hash", "body")
                .iterator(chunk_size=STREAM_CHUNK))
        for seq, prev_hash, digest, body in rows:
            out.write(json.dumps({"seq": seq, "prev_hash": prev_hash, "hash": digest, "body": body},
                                 ensure_ascii=False) + "\n")
            count += 1
    digests = AuditDigest.objects.filter(organization=organization).order_by("period_end", "id")
    with (directory / DIGESTS_FILE).open("w", encoding="utf-8") as out:
        for body, signature in digests.values_list("body", "signature"):
            out.write(json.dumps({"body": body, "signature": signature}, ensure_ascii=False) + "\n")
    keys = [{"fingerprint": fp, "algorithm": algorithm, "public_key_pem": pem}
            for fp, algorithm, pem in SigningKey.objects.values_list("fingerprint", "algorithm", "public_key_pem")]
    (directory / KEYS_FILE).write_text(json.dumps(keys, indent=2), encoding="utf-8")
    return {"events": count, "digests": digests.count(), "keys": len(keys)}


def exposure(organization, *, since: date | None = None, until: date | None = None) -> dict:
    """Exposure over [since, until] from the rollups: per group x category x purpose x destination,
    flows, volume and violations; `account_days` sums each day's distinct accounts, and
    `peak_daily_accounts` is the largest of them (distinct accounts over a range are not additive)."""
    until = until or timezone.now().date()
    since = since or until - timedelta(days=30)
    rows = (ExposureRollup.objects.filter(organization=organization, day__gte=since, day__lte=until)
            .values("group_key", "data_category", "purpose", "destination")
            .annotate(total_flows=Sum("flows"), total_volume=Sum("volume"),
                      violations=Sum("flows", filter=Q(verdict=Verdict.VIOLATION)),
                      violation_volume=Sum("volume", filter=Q(verdict=Verdict.VIOLATION)),
                      account_days=Sum("accounts"), peak_daily_accounts=Max("accounts"))
            .order_by("group_key", "data_category", "purpose", "destination"))
    names = dict(Group.objects.filter(organization=organization).values_list("pk", "display_name"))
    cells = [{"group": row["group_key"] or None, "group_name": names.get(row["group_key"], "(no group)"),
              "data_category": row["data_category"], "purpose": row["purpose"], "destination": row["destination"],
              "flows": row["total_flows"], "volume": row["total_volume"], "violations": row["violations"] or 0,
              "violation_volume": row["violation_volume"] or 0, "account_days": row["account_days"],
              "peak_daily_accounts": row["peak_daily_accounts"]} for row in rows]
    daily = list(ExposureRollup.objects.filter(organization=organization, day__gte=since, day__lte=until)
                 .values("day").annotate(total_flows=Sum("flows"), total_volume=Sum("volume"),
                                         violations=Sum("flows", filter=Q(verdict=Verdict.VIOLATION)))
                 .order_by("day"))
    return {"since": since, "until": until, "cells": cells,
            "daily": [{"day": d["day"], "flows": d["total_flows"], "volume": d["total_volume"],
                       "violations": d["violations"] or 0} for d in daily]}
