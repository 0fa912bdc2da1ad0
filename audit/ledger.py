"""The ledger's one writer: the only code that builds event bodies, links their hashes, writes event
rows, grows the organization's Merkle tree and moves its chain head (docs/audit-chain.md).

Outbox events (audit.services.drain_outbox) and flow batches both append here, under the chain
head's row lock, so a change to the format, a check, or a stall applies to every entry at once.
Every event is a leaf of the tree and a link of the hash chain; a batch's flows are leaves only,
followed by the batch's chained event (`append_flows`).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import orjson
from django.utils import timezone

from config.db import copy_rows

from . import chain, merkle
from .models import AuditEvent, ChainHead, MerkleTile

log = logging.getLogger(__name__)

EVENT_COLUMNS = ("organization_id", "seq", "kind", "occurred_at", "recorded_at", "actor_kind", "actor_name",
                 "subject_account_id", "outbox_id", "body", "prev_hash", "hash", "leaf_index")
TILE_COLUMNS = ("organization_id", "level", "index", "hashes")


class Entry(NamedTuple):
    """One event to append. `occurred_iso` may carry `occurred_at` already written by `chain.iso`."""

    kind: str
    occurred_at: datetime
    actor: Mapping
    subject_account_id: int | None
    payload: Mapping
    outbox_id: int | None = None
    occurred_iso: str | None = None


class ChainStalled(RuntimeError):
    """The chain is stopped at an outbox row it cannot chain: nothing may be appended ahead of it."""


@dataclass(frozen=True)
class Appended:
    count: int  # entries appended, in order, from the first
    first_seq: int  # the seq of the first of them
    recorded_at: datetime
    stopped_at: int | None = None  # the index of the entry that could not be chained, if any
    error: str = ""


def locked_head(organization_id: int) -> ChainHead:
    """The organization's chain head, locked for this transaction: one writer at a time."""
    ChainHead.objects.get_or_create(organization_id=organization_id)
    return ChainHead.objects.select_for_update().get(organization_id=organization_id)


def raise_if_stalled(organization_id: int) -> None:
    """Raise ChainStalled at once if the chain is stalled, before a caller spends work it could not
    append (a flow batch's judging); `append` checks again under the head's lock."""
    stalled = (ChainHead.objects.filter(organization_id=organization_id)
               .values_list("stalled_outbox_id", flat=True).first())
    if stalled is not None:
        raise ChainStalled(_stalled(organization_id, stalled))


def _stalled(organization_id: int, outbox_id: int) -> str:
    return f"the audit chain of organization {organization_id} is stalled at outbox row {outbox_id}"


def append(head: ChainHead, entries: Sequence[Entry], *, recorded_at: datetime | None = None) -> Appended:
    """Append the entries to the chain whose head is locked in the caller's transaction.

    The entries are appended in order up to the first one that cannot be chained; that one and the
    rest are not (`stopped_at`). An outbox entry that cannot be chained stalls the chain at its row;
    while it is stalled, only that row may be appended (a repaired row, or one a fix made
    chainable): anything else raises ChainStalled, since it would go ahead of older changes.
    """
    if head.stalled_outbox_id is not None and (not entries or entries[0].outbox_id != head.stalled_outbox_id):
        raise ChainStalled(_stalled(head.organization_id, head.stalled_outbox_id))
    recorded_at = recorded_at or timezone.now()
    recorded_iso = chain.iso(recorded_at)
    org_id = head.organization_id
    seq, prev, leaf = head.seq, head.hash, head.tree_size
    rows, leaves, stopped_at, error = [], [], None, ""
    event_body, link_hash, leaf_hash = chain.event_body, chain.link_hash, merkle.leaf_hash
    for index, entry in enumerate(entries):
        try:
            kind, actor_kind, actor_name = chain.event_projection(kind=entry.kind, actor=entry.actor)
            body = event_body(organization_id=org_id, seq=seq + 1, kind=kind,
                              occurred_at=entry.occurred_iso or entry.occurred_at, recorded_at=recorded_iso,
                              actor=entry.actor, subject_account=entry.subject_account_id, payload=entry.payload)
        except (chain.Unchainable, orjson.JSONEncodeError, TypeError, ValueError) as exc:
            stopped_at, error = index, f"{type(exc).__name__}: {exc}"
            break
        seq += 1
        digest = link_hash(prev, body)
        rows.append((org_id, seq, kind, entry.occurred_at, recorded_at, actor_kind, actor_name,
                     entry.subject_account_id, entry.outbox_id, body, prev, digest, leaf))
        leaves.append(leaf_hash(body.encode()))
        prev, leaf = digest, leaf + 1
    first_seq = head.seq + 1
    if rows:
        copy_rows(AuditEvent, EVENT_COLUMNS, rows)
        _grow(head, leaves)
        head.seq, head.hash = seq, prev
        _save(head, recorded_at)
    if stopped_at is not None and entries[stopped_at].outbox_id is not None:
        record_stall(head, entries[stopped_at], error)
    elif rows and head.stalled_outbox_id is not None:
        clear_stall(head)  # the row it was stopped at is chained now
    return Appended(len(rows), first_seq, recorded_at, stopped_at, error)


def append_flows(head: ChainHead, entries: Sequence[bytes]) -> tuple[int, str]:
    """Add flow entries (bytes, docs/audit-chain.md "The flow entry") as leaves of the tree whose head is
    locked in the caller's transaction; returns their first leaf and the hex root of their own subtree,
    which the batch's event, appended next in the same transaction, records."""
    if head.stalled_outbox_id is not None:
        raise ChainStalled(_stalled(head.organization_id, head.stalled_outbox_id))
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    first = _grow(head, leaves)
    _save(head, timezone.now())
    return first, merkle.root_of(leaves).hex()


def _grow(head: ChainHead, leaf_hashes: Sequence[bytes]) -> int:
    """Append leaf hashes to the head's tree: the tiles they fill are written, the frontier and root kept
    on the head (saved by the caller). Returns the first new leaf's index."""
    frontier = merkle.Frontier(head.tree_size, bytes(head.tree_edge))
    first = frontier.size
    tiles = frontier.append(leaf_hashes)
    if tiles:
        copy_rows(MerkleTile, TILE_COLUMNS, [(head.organization_id, level, index, blob)
                                             for level, index, blob in tiles])
    head.tree_size, head.tree_edge, head.tree_root = frontier.size, frontier.pack(), frontier.root().hex()
    return first


def _save(head: ChainHead, when: datetime) -> None:
    ChainHead.objects.filter(pk=head.pk).update(seq=head.seq, hash=head.hash, tree_size=head.tree_size,
                                                tree_root=head.tree_root, tree_edge=head.tree_edge,
                                                updated_at=when)


def record_stall(head: ChainHead, entry: Entry, error: str) -> None:
    """Mark the chain stopped at this outbox row. Logged the first time; the sweep logs it every round."""
    first = head.stalled_outbox_id != entry.outbox_id
    since = timezone.now() if first or head.stalled_since is None else head.stalled_since
    ChainHead.objects.filter(pk=head.pk).update(stalled_outbox_id=entry.outbox_id, stall_error=error[:2000],
                                                stalled_since=since)
    head.stalled_outbox_id, head.stalled_since, head.stall_error = entry.outbox_id, since, error[:2000]
    if first:
        log.error("audit chain of organization %s stalled at seq %s: outbox row %s (%s) cannot be chained: %s",
                  head.organization_id, head.seq + 1, entry.outbox_id, entry.kind, error)


def clear_stall(head: ChainHead) -> None:
    log.warning("audit chain of organization %s resumed past outbox row %s", head.organization_id,
                head.stalled_outbox_id)
    ChainHead.objects.filter(pk=head.pk).update(stalled_outbox_id=None, stalled_since=None, stall_error="")
    head.stalled_outbox_id, head.stalled_since, head.stall_error = None, None, ""
