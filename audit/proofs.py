"""Proofs out of an organization's Merkle log (RFC 9162; docs/audit-chain.md "Proofs").

An inclusion proof shows that one entry (an event's body, a flow's entry) is leaf i of the tree a
signed tree head vouches for; a consistency proof, that the tree of an earlier signed head is a
prefix of a later one's. Both are O(log n) hashes read from a few tiles, and both verify with
`tools/verify_audit_log.py` and a public key obtained apart, without our code.
"""
from __future__ import annotations

from django.db import connection

from . import merkle
from .models import AuditDigest, ChainHead, MerkleTile

INCLUSION_FORMAT, CONSISTENCY_FORMAT = "inclusion/1", "consistency/1"


class NotCovered(LookupError):
    """No signed tree head covers the leaf yet (the next digest will), or the head asked for is unknown."""


def _tree(organization_id: int, size: int) -> merkle.Tree:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tree_size, tree_edge FROM {ChainHead._meta.db_table} WHERE organization_id = %s",
                       [organization_id])
        head = cursor.fetchone()
    frontier = merkle.Frontier(head[0], bytes(head[1])) if head else merkle.Frontier()
    return merkle.Tree(size, frontier, lambda keys: tiles(organization_id, keys))


def tiles(organization_id: int, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Full tiles of the organization's tree by (level, index), in one query."""
    pairs = " OR ".join(["(level = %s AND index = %s)"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT level, index, hashes FROM {MerkleTile._meta.db_table} "
                       f"WHERE organization_id = %s AND ({pairs})",
                       [organization_id, *(value for key in keys for value in key)])
        return {(level, index): bytes(blob) for level, index, blob in cursor.fetchall()}


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
    head = heads.filter(pk=digest_id).first() if digest_id is not None else heads.last()
    if head is None:
        raise NotCovered("no signed tree head yet: one is written every period (docs/audit-chain.md)")
    if head.tree_size <= leaf_index:
        raise NotCovered(f"leaf {leaf_index} is newer than the signed tree head of size {head.tree_size}; "
                         "the next signed tree head will cover it")
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
    second = heads.filter(pk=second_id).first() if second_id is not None else heads.last()
    if first is None or second is None:
        raise NotCovered("no such signed tree head in this organization's log")
    if first.tree_size > second.tree_size:
        first, second = second, first
    path = _tree(organization.pk, second.tree_size).consistency_path(first.tree_size)
    return {"format": CONSISTENCY_FORMAT, "organization": organization.pk, "first": signed_head(first),
            "second": signed_head(second), "proof": [h.hex() for h in path]}
