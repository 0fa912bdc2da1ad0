"""Proofs out of an organization's Merkle log (RFC 9162; docs/audit-chain.md "Proofs").

An inclusion proof shows that one entry (an event's body, a flow's entry) is leaf i of the tree a
signed tree head vouches for; a consistency proof, that the tree of an earlier signed head is a
prefix of a later one's. Both are O(log n) hashes read from a few tiles, and both verify with
`tools/verify_audit_log.py` and a public key obtained apart, without our code.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from . import chain, merkle
from .models import AuditDigest, AuditEvent, ChainHead, MerkleTile

INCLUSION_FORMAT, CONSISTENCY_FORMAT = "inclusion/1", "consistency/1"


class NotCovered(LookupError):
    """No signed tree head covers the leaf yet: the next digest will, by `expected_by` (None: unknown)."""

    def __init__(self, message: str, expected_by: datetime | None = None):
        super().__init__(message)
        self.expected_by = expected_by


class UnknownTreeHead(LookupError):
    """The signed tree head asked for is not one of this organization's."""


def next_head_expected(organization) -> datetime | None:
    """When the next signed tree head should be written: a period after the latest digest's end."""
    latest = AuditDigest.objects.filter(organization=organization).order_by("-period_end", "-id").first()
    return latest.period_end + timedelta(minutes=settings.AUDIT_DIGEST_MINUTES) if latest else None


def _not_covered(organization, what: str) -> NotCovered:
    expected = next_head_expected(organization)
    when = (f"expected by {chain.iso(expected)[:19]}Z" if expected
            else f"within {settings.AUDIT_DIGEST_MINUTES} minutes")
    return NotCovered(f"{what}; the next signed tree head will cover it ({when}: one is signed every "
                      f"{settings.AUDIT_DIGEST_MINUTES} minutes).", expected)


def _tree(organization_id: int, size: int) -> merkle.Tree:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tree_size, tree_edge FROM {ChainHead._meta.db_table} WHERE organization_id = %s",
                       [organization_id])
        head = cursor.fetchone()
    frontier = merkle.Frontier(head[0], bytes(head[1])) if head else merkle.Frontier()
    return merkle.Tree(size, frontier, lambda keys: tiles(organization_id, keys))


def tiles(organization_id: int, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Full tiles of the organization's tree by (level, index), in one query."""
    level, index = (connection.ops.quote_name(name) for name in ("level", "index"))  # SQLite reserves INDEX
    pairs = " OR ".join([f"({level} = %s AND {index} = %s)"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {level}, {index}, hashes FROM {MerkleTile._meta.db_table} "
                       f"WHERE organization_id = %s AND ({pairs})",
                       [organization_id, *(value for key in keys for value in key)])
        return {(row[0], row[1]): bytes(row[2]) for row in cursor.fetchall()}


def signed_head(digest: AuditDigest) -> dict:
    return {"body": digest.body, "signature": digest.signature}


def tree_heads(organization):
    """The organization's signed tree heads (format-2 digests), oldest first."""
    return (AuditDigest.objects.filter(organization=organization, tree_size__isnull=False)
            .order_by("period_end", "id"))


def covering_head(organization, leaf_index: int, *, digest_id: int | None = None) -> AuditDigest:
    """The signed tree head to prove a leaf against: the one asked for, or the latest; NotCovered if it
    does not hold the leaf."""
    heads = tree_heads(organization)
    if digest_id is not None:
        head = heads.filter(pk=digest_id).first()
        if head is None:
            raise UnknownTreeHead(f"no signed tree head {digest_id} in this organization's log")
        if head.tree_size <= leaf_index:
            raise NotCovered(f"leaf {leaf_index} is newer than signed tree head {digest_id} "
                             f"(of {head.tree_size} leaves): ask for a later one, or the latest")
        return head
    head = heads.last()
    if head is None:
        raise _not_covered(organization, "there is no signed tree head yet")
    if head.tree_size <= leaf_index:
        raise _not_covered(organization, f"leaf {leaf_index} is newer than the latest signed tree head "
                                         f"(of {head.tree_size} leaves)")
    return head


def inclusion_proof(organization, *, leaf_index: int, entry: bytes, digest_id: int | None = None,
                    about: dict | None = None) -> dict:
    """The proof that `entry` is leaf `leaf_index` of the tree a signed tree head vouches for."""
    head = covering_head(organization, leaf_index, digest_id=digest_id)
    path = _tree(organization.pk, head.tree_size).inclusion_path(leaf_index)
    return {"format": INCLUSION_FORMAT, "organization": organization.pk, "leaf_index": leaf_index,
            "tree_size": head.tree_size, "entry": entry.decode(), "audit_path": [h.hex() for h in path],
            "tree_head": signed_head(head), **(about or {})}


def consistency_proof(organization, *, first_id: int, second_id: int | None = None) -> dict:
    """The proof that the tree of signed head `first_id` is a prefix of that of `second_id` (or the latest)."""
    heads = tree_heads(organization)
    first = heads.filter(pk=first_id).first()
    if first is None:
        raise UnknownTreeHead(f"no signed tree head {first_id} in this organization's log")
    second = heads.filter(pk=second_id).first() if second_id is not None else heads.last()
    if second is None:
        raise UnknownTreeHead(f"no signed tree head {second_id} in this organization's log")
    if first.tree_size > second.tree_size:
        first, second = second, first
    path = _tree(organization.pk, second.tree_size).consistency_path(first.tree_size)
    return {"format": CONSISTENCY_FORMAT, "organization": organization.pk, "first": signed_head(first),
            "second": signed_head(second), "proof": [h.hex() for h in path]}


def event_proof(organization, event: AuditEvent, *, digest_id: int | None = None, about: dict | None = None) -> dict:
    """The inclusion proof of a chained event: its body is its leaf's entry."""
    return inclusion_proof(organization, leaf_index=event.leaf_index, entry=event.body.encode(), digest_id=digest_id,
                           about={"event": {"seq": event.seq, "kind": event.kind}, **(about or {})})


def last_two_heads_consistent(organization) -> tuple[AuditDigest | None, bool | None]:
    """The latest signed tree head, and whether the previous one's tree is a prefix of it: its consistency
    proof built from the tiles and checked (None when there is no previous head)."""
    heads = list(tree_heads(organization).reverse()[:2])
    if not heads:
        return None, None
    if len(heads) == 1:
        return heads[0], None
    latest, previous = heads
    if previous.tree_size > latest.tree_size:
        return latest, False
    proof = _tree(organization.pk, latest.tree_size).consistency_path(previous.tree_size)
    return latest, merkle.verify_consistency(previous.tree_size, latest.tree_size, proof,
                                             bytes.fromhex(previous.root_hash), bytes.fromhex(latest.root_hash))
