"""Reads of the audit trail: events, verification, digests, export."""
import heapq
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Count, Min

from config.db import stream_rows

from . import leaves
from .chain import GENESIS_HASH, Verification, verify_links
from .logcheck import verify_leaves
from .models import AuditDigest, AuditEvent, ChainHead, EventKind, OutboxEntry, SigningKey
from .signing import verify_signature
from .verification import DIGESTS_FILE, EVENTS_FILE, FLOWS_FILE, KEYS_FILE, MANIFEST_FILE, verify_digests

STREAM_CHUNK = 10_000
FLOW_KINDS = (EventKind.FLOW_PERMITTED, EventKind.FLOW_VIOLATION)


def organizations():
    """Every organization, reached through the chain head's foreign key (audit imports no other app)."""
    return ChainHead._meta.get_field("organization").related_model.objects.all()


def events_of(organization):
    return AuditEvent.objects.filter(organization=organization)


def event_counts_by_kind(organization, *, since: datetime, until: datetime) -> dict[str, int]:
    """How many of the organization's events occurred in [since, until), by kind, in kind order."""
    rows = (events_of(organization).filter(occurred_at__gte=since, occurred_at__lt=until)
            .values("kind").annotate(n=Count("id")).order_by("kind"))
    return {row["kind"]: row["n"] for row in rows}


def event_bodies(organization, *, kind: str, since: datetime, until: datetime):
    """(seq, body) of the organization's events of `kind` that occurred in [since, until), in seq order,
    read in chunks."""
    return (events_of(organization).filter(kind=kind, occurred_at__gte=since, occurred_at__lt=until)
            .order_by("seq").values_list("seq", "body").iterator(chunk_size=2000))


def latest_digest(organization) -> AuditDigest | None:
    return AuditDigest.objects.filter(organization=organization).order_by("-period_end", "-id").first()


def digest_count(organization) -> int:
    return AuditDigest.objects.filter(organization=organization).count()


def digest_signature_valid(digest: AuditDigest) -> bool:
    """Whether the digest's signature verifies under the key it names (False for a key not on file)."""
    pem = SigningKey.objects.filter(fingerprint=digest.key_fingerprint).values_list("public_key_pem",
                                                                                  flat=True).first()
    return bool(pem) and verify_signature(pem, digest.body, digest.signature)


def covering_digest(organization, instant: datetime) -> AuditDigest | None:
    """The first signed digest whose period ends at or after `instant`: it vouches for every event before."""
    return (AuditDigest.objects.filter(organization=organization, period_end__gte=instant)
            .order_by("period_end", "id").first())


def public_keys() -> dict[str, str]:
    return dict(SigningKey.objects.values_list("fingerprint", "public_key_pem"))


def chain_head(organization) -> tuple[int, str]:
    """The seq and hash of the organization's last chained event; (0, "") before the first."""
    return ChainHead.objects.filter(organization=organization).values_list("seq", "hash").first() or (0, "")


def chain_seq(organization) -> int:
    """The seq of the organization's last chained event (0 before the first)."""
    return ChainHead.objects.filter(organization=organization).values_list("seq", flat=True).first() or 0


def tree_size(organization) -> int:
    """How many leaves (events and flows) the organization's log holds."""
    return ChainHead.objects.filter(organization=organization).values_list("tree_size", flat=True).first() or 0


def outbox_pending(organization) -> int:
    """The organization's changes recorded but not chained yet."""
    return OutboxEntry.objects.filter(organization_id=organization.pk).count()


def pipeline_state(organization) -> dict:
    """What of the organization's changes is not in the chain yet, and whether the chain is stalled.

    `valid` says the chain holds what it holds; this says what it does not hold yet. A stalled chain
    waits on an outbox row it cannot chain (docs/operations.md).
    """
    pending = OutboxEntry.objects.filter(organization=organization).aggregate(n=Count("id"), oldest=Min("occurred_at"))
    return {"pending": pending["n"], "oldest_pending_at": pending["oldest"], "stalled": chain_stall(organization)}


def chain_stall(organization) -> dict | None:
    """Where the organization's chain is stopped, or None: the seq it waits at, the outbox row, since when, why."""
    head = (ChainHead.objects.filter(organization=organization, stalled_outbox_id__isnull=False)
            .values("seq", "stalled_outbox_id", "stalled_since", "stall_error").first())
    if head is None:
        return None
    return {"seq": head["seq"] + 1, "outbox_id": head["stalled_outbox_id"], "since": head["stalled_since"],
            "error": head["stall_error"]}


def verify_chain(organization, *, jobs: int = 1) -> Verification:
    """Recompute the organization's chain from its first event, against its signed digests and its head,
    and check every row's projection columns against its hashed body; then recompute its Merkle log
    from every leaf (audit.logcheck), in `jobs` processes.

    Drains may commit while it runs: it walks the chain only up to the head it read, and on
    PostgreSQL reads everything in one REPEATABLE READ snapshot (the leaves too, with one job).
    """
    if jobs > 1:
        result = _verify_links(organization)
        return _with_leaves(result, verify_leaves(organization, jobs=jobs)) if result.valid else result
    with transaction.atomic():
        _repeatable_read()
        result = _verify_links(organization)
        return _with_leaves(result, verify_leaves(organization)) if result.valid else result


def _repeatable_read() -> None:
    """Make the transaction just opened read one snapshot (PostgreSQL; a nested block keeps its outer's level)."""
    if connection.vendor == "postgresql" and not _inside_outer_transaction():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _with_leaves(result: Verification, leaves) -> Verification:
    result.leaves_checked, result.tree_size, result.root_hash = leaves.leaves_checked, leaves.tree_size, \
        leaves.root_hash
    if not leaves.valid:
        result.fail(None, leaves.problem)
        result.first_invalid_leaf = leaves.first_invalid_leaf
    return result


def _verify_links(organization) -> Verification:
    with transaction.atomic():
        _repeatable_read()
        # Digests before the head: every digest read was signed at or below the head read next,
        # so a digest past the head means the head went back, not that a drain moved on.
        digests = AuditDigest.objects.filter(organization=organization).order_by("period_end", "id")
        problem, anchors = verify_digests(digests.values_list("body", "signature"), public_keys())
        if problem:
            return Verification().fail(None, problem)
        head = ChainHead.objects.filter(organization=organization).values_list("seq", "hash").first()
        rows = event_rows(organization, None if head is None else head[0])
        try:
            result = verify_links(rows, organization_id=organization.pk, anchors=anchors)
        finally:
            rows.close()  # a walk that stopped early ends its query here, inside the transaction
    if result.valid and head is not None and head != (result.head_seq, result.head_hash):
        result.fail(result.head_seq + 1, "the chain head names events that are missing")
    return result


@dataclass
class Segment:
    """A stretch of the chain, first_seq to last_seq, and what recomputing it found."""

    first_seq: int
    last_seq: int
    from_digest: bool  # it starts after a signed digest's head, not at the first event
    digests_checked: int
    verification: Verification


def verify_segment(organization, *, since: datetime, until: AuditDigest | None) -> Segment:
    """The chain from the last digest signed for a period ending by `since` (or the first event) to the
    digest `until` (or the head, without one), recomputed link by link.

    Every digest's signature and link to the previous one are checked first (they are few); the
    segment must then start from the head hash the earlier digest signed and end on the one `until`
    signed. Its cost follows the segment, not the organization's whole history (`verify_chain`).
    """
    digests = AuditDigest.objects.filter(organization=organization).order_by("period_end", "id")
    if until is not None:  # later digests are not the segment's business: its answer stays the same
        digests = digests.filter(period_end__lte=until.period_end)
    problem, anchors = verify_digests(digests.values_list("body", "signature"), public_keys())
    before = digests.filter(period_end__lte=since).values_list("last_seq", flat=True).last()
    first_seq = (before or 0) + 1
    if until is not None:
        last_seq = until.last_seq
    else:
        last_seq = ChainHead.objects.filter(organization=organization).values_list("seq", flat=True).first() or 0
    segment = Segment(first_seq, last_seq, before is not None, digests.count(), Verification())
    if problem:
        segment.verification.fail(None, problem)
        return segment

    rows = event_rows(organization, last_seq, first_seq)
    try:
        checked = verify_links(rows, organization_id=organization.pk, anchors=anchors, first_seq=first_seq,
                               prev_hash=anchors.get(before, GENESIS_HASH) if before else GENESIS_HASH)
    finally:
        rows.close()  # a walk that stopped early ends its query here
    if checked.valid and checked.head_seq != last_seq:
        checked.fail(checked.head_seq + 1, f"the events up to seq {last_seq} are missing")
    segment.verification = checked
    return segment


def _inside_outer_transaction() -> bool:
    """Whether the atomic block just opened is nested (SET TRANSACTION must come first in a transaction)."""
    return len(connection.savepoint_ids) > 0 or connection.atomic_blocks[:-1] != []


def canonical_instant(column: str) -> str:
    """SQL writing an instant column as the chain writes instants (`chain.iso`), so it compares as text."""
    if connection.vendor == "postgresql":
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    # SQLite holds naive UTC text, 'YYYY-MM-DD HH:MM:SS' with '.ffffff' unless the microseconds are 0
    return f"replace({column}, ' ', 'T') || CASE WHEN length({column}) = 19 THEN '.000000Z' ELSE 'Z' END"


def event_rows(organization, up_to_seq: int | None, from_seq: int = 1):
    """The chain's rows in seq order as verify_links reads them, projection columns included.

    On PostgreSQL the rows are streamed as the server produces them, so the server reads the next
    rows while Python hashes the previous ones (a server-side cursor would make them take turns).
    """
    bound = "" if up_to_seq is None else f" AND seq <= {int(up_to_seq)}"
    if from_seq > 1:
        bound += f" AND seq >= {int(from_seq)}"
    sql = (f"SELECT seq, prev_hash, hash, body, kind, {canonical_instant('occurred_at')}, "
           f"{canonical_instant('recorded_at')}, actor_kind, actor_name, subject_account_id "
           f"FROM {AuditEvent._meta.db_table} WHERE organization_id = %s{bound} ORDER BY seq")
    if connection.vendor != "postgresql":
        yield from stream_rows(sql, [organization.pk], chunk=STREAM_CHUNK)
        return
    connection.ensure_connection()
    # A savepoint: a stream closed early is cancelled, which aborts what it ran in.
    with transaction.atomic(), connection.connection.cursor() as cursor:
        yield from cursor.stream(sql, [organization.pk])


def export_chain(organization, directory: Path) -> dict:
    """Write the log for offline verification (format 2, docs/audit-chain.md): manifest.json, the events and
    the flows (JSON Lines, each with its leaf index), the digests and the public keys.

    Everything is read in one snapshot, up to the chain head read first, and streamed to the files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        if connection.vendor == "postgresql" and not _inside_outer_transaction():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        seq, size = (ChainHead.objects.filter(organization=organization).values_list("seq", "tree_size").first()
                     or (0, 0))
        events = 0
        with (directory / EVENTS_FILE).open("w", encoding="utf-8") as out:
            rows = (events_of(organization).filter(seq__lte=seq).order_by("seq")
                    .values_list("seq", "prev_hash", "hash", "body", "leaf_index").iterator(chunk_size=STREAM_CHUNK))
            for event_seq, prev_hash, digest, body, leaf_index in rows:
                out.write(json.dumps({"seq": event_seq, "prev_hash": prev_hash, "hash": digest, "body": body,
                                      "leaf_index": leaf_index}, ensure_ascii=False) + "\n")
                events += 1
        flows = 0
        with (directory / FLOWS_FILE).open("w", encoding="utf-8") as out:
            for leaf_index, entry in other_leaves(organization.pk, 0, size):
                out.write(json.dumps({"leaf_index": leaf_index, "entry": entry.decode()}, ensure_ascii=False) + "\n")
                flows += 1
        digests = AuditDigest.objects.filter(organization=organization).order_by("period_end", "id")
        with (directory / DIGESTS_FILE).open("w", encoding="utf-8") as out:
            for body, signature in digests.values_list("body", "signature"):
                out.write(json.dumps({"body": body, "signature": signature}, ensure_ascii=False) + "\n")
        count = digests.count()
    keys = [{"fingerprint": fp, "algorithm": algorithm, "public_key_pem": pem}
            for fp, algorithm, pem in SigningKey.objects.values_list("fingerprint", "algorithm", "public_key_pem")]
    (directory / KEYS_FILE).write_text(json.dumps(keys, indent=2), encoding="utf-8")
    manifest = {"format": 2, "organization": organization.pk, "tree_size": size, "event_count": events,
                "flow_count": flows}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    return {"events": events, "flows": flows, "tree_size": size, "digests": count, "keys": len(keys)}


def other_leaves(organization_id: int, start: int, stop: int):
    """(leaf_index, entry) of the leaves other apps keep (flows), in [start, stop), in leaf order."""
    readers = [((index, entry) for index, entry, _ in reader(organization_id, start, stop))
               for reader in leaves.READERS.values()]
    return heapq.merge(*readers, key=lambda leaf: leaf[0])
