"""The hash chain's format and its verification, as pure functions (docs/audit-chain.md).

Both the database verifier and the offline export verifier use these, so an auditor's copy is
checked by exactly the code that checks the live chain.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

GENESIS_HASH = "0" * 64


def canonical_json(value) -> str:
    """UTF-8 JSON, object keys sorted, no insignificant whitespace, non-ASCII left as is."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def iso(instant: datetime) -> str:
    """An instant as the chain writes it: UTC, four-digit year, microseconds, a 'Z' (27 characters)."""
    return instant.astimezone(timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"  # drops "+00:00"


def event_body(*, organization_id: int, seq: int, kind: str, occurred_at: datetime | str,
               recorded_at: datetime | str, actor: Mapping, subject_account: int | None, payload: Mapping) -> str:
    """The canonical body of an event; instants may be given already written by `iso`."""
    return canonical_json({
        "organization": organization_id, "seq": seq, "kind": kind,
        "occurred_at": occurred_at if isinstance(occurred_at, str) else iso(occurred_at),
        "recorded_at": recorded_at if isinstance(recorded_at, str) else iso(recorded_at),
        "actor": actor, "subject_account": subject_account, "payload": payload,
    })


class Unchainable(ValueError):
    """An outbox row whose event the chain cannot hold as it stands."""


# The widths of the event row's projection columns (audit.models.AuditEvent).
KIND_MAX, ACTOR_KIND_MAX, ACTOR_NAME_MAX = 48, 16, 200


def event_projection(*, kind, actor) -> tuple[str, str, str]:
    """The (kind, actor_kind, actor_name) columns of an event row, or Unchainable if they can't be written."""
    if not isinstance(kind, str) or not 0 < len(kind) <= KIND_MAX:
        raise Unchainable(f"kind must be a string of 1 to {KIND_MAX} characters")
    if not isinstance(actor, Mapping):
        raise Unchainable("actor must be an object")
    actor_kind, actor_name = actor.get("kind", ""), actor.get("name", "")
    if not isinstance(actor_kind, str) or len(actor_kind) > ACTOR_KIND_MAX:
        raise Unchainable(f"actor.kind must be a string of at most {ACTOR_KIND_MAX} characters")
    if not isinstance(actor_name, str) or len(actor_name) > ACTOR_NAME_MAX:
        raise Unchainable(f"actor.name must be a string of at most {ACTOR_NAME_MAX} characters")
    if "\x00" in kind + actor_kind + actor_name:
        raise Unchainable("kind and actor hold no NUL character")
    return kind, actor_kind, actor_name


def link_hash(prev_hash: str, body: str) -> str:
    """hash = hex(SHA-256(prev_hash as ASCII hex || body as UTF-8))."""
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@dataclass
class Verification:
    valid: bool = True
    events_checked: int = 0
    first_invalid_seq: int | None = None
    problem: str = ""
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    leaves_checked: int = 0  # format 2: the Merkle log's leaves recomputed (audit.logcheck)
    first_invalid_leaf: int | None = None
    tree_size: int = 0
    root_hash: str = ""
    notes: list[str] = field(default_factory=list)

    def fail(self, seq: int | None, problem: str) -> Verification:
        if self.valid:
            self.valid, self.first_invalid_seq, self.problem = False, seq, problem
        return self

    def as_dict(self) -> dict:
        return {"valid": self.valid, "events_checked": self.events_checked,
                "first_invalid_seq": self.first_invalid_seq, "problem": self.problem,
                "head_seq": self.head_seq, "head_hash": self.head_hash, "leaves_checked": self.leaves_checked,
                "first_invalid_leaf": self.first_invalid_leaf, "tree_size": self.tree_size,
                "root_hash": self.root_hash}


# The columns of an event row copied from its body, in the order verify_links compares them.
PROJECTED_COLUMNS = ("kind", "occurred_at", "recorded_at", "actor_kind", "actor_name", "subject_account_id")


def verify_links(rows: Iterable[tuple], *, organization_id: int | None = None,
                 anchors: Mapping[int, str] | None = None, first_seq: int = 1,
                 prev_hash: str = GENESIS_HASH) -> Verification:
    """Walk a chain in seq order and stop at the first broken link.

    Each row is (seq, prev_hash, hash, body), optionally followed by the row's projection columns
    in PROJECTED_COLUMNS order, instants written as `iso` writes them: each must equal the body's.
    `anchors` maps a seq to the hash a signed digest states for it. A segment of the chain starts
    at `first_seq`, after the event whose hash is `prev_hash` (a signed digest's head, say).
    """
    result = Verification()
    anchors = anchors or {}
    expected_prev, expected_seq = prev_hash, first_seq
    loads, sha256 = orjson.loads, hashlib.sha256
    for row in rows:
        seq, prev_hash, digest, body = row[0], row[1], row[2], row[3]
        if seq != expected_seq:
            return result.fail(expected_seq, f"seq {expected_seq} is missing (found {seq})")
        if prev_hash != expected_prev:
            return result.fail(seq, "prev_hash does not name the previous event's hash")
        if sha256((prev_hash + body).encode()).hexdigest() != digest:
            return result.fail(seq, "hash does not match the event's content")
        try:
            event = loads(body)
            if event["seq"] != seq or (organization_id is not None and event["organization"] != organization_id):
                return result.fail(seq, "the event's seq or organization differs from its position")
            if len(row) > 4:
                actor = event["actor"]  # the body's members in PROJECTED_COLUMNS order:
                expected = (event["kind"], event["occurred_at"], event["recorded_at"], actor["kind"], actor["name"],
                            event["subject_account"])
                if row[4:] != expected:
                    return result.fail(seq, _differing_column(row[4:], expected))
        except (ValueError, TypeError, KeyError):
            return result.fail(seq, "the body is not an event object with the members the format requires")
        if seq in anchors and anchors[seq] != digest:
            return result.fail(seq, "differs from the head hash a signed digest states")
        expected_prev, expected_seq = digest, seq + 1
        result.events_checked += 1
    result.head_seq, result.head_hash = expected_seq - 1, expected_prev
    missing = [seq for seq in anchors if seq >= expected_seq and seq > 0]
    if missing:
        return result.fail(expected_seq, f"a signed digest covers up to seq {max(missing)}, which is missing")
    return result


def _differing_column(columns: tuple, expected: tuple) -> str:
    name = next(name for name, value, wanted in zip(PROJECTED_COLUMNS, columns, expected) if value != wanted)
    return f"the {name} column differs from the hashed content"
