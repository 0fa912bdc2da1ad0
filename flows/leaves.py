"""Judged flows as leaves of their organization's log: each row rebuilt into its entry, byte for byte."""
import orjson
from django.db import connection

from audit import proofs
from audit.models import AuditEvent
from audit.selectors import canonical_instant

from .judging import SORTED
from .models import TelemetryFlow

# The entry's fields up to the verdict, written by the database (docs/audit-chain.md "The flow entry").
PREFIX_COLUMNS = ("organization_id", "batch_id", "flow_id", "occurred_at", "data_category", "purpose", "destination",
                  "volume", "account_ids", "verdict")
CACHE_LIMIT = 50_000


def _select() -> str:
    fields = [canonical_instant(c) if c == "occurred_at" else c for c in PREFIX_COLUMNS]
    if connection.vendor == "postgresql":
        prefix = "concat_ws(E'\\t', 'flow/1', " + ", ".join(fields) + ")"
        json = "blocking_accounts::text, policy_version, reasons::text"
    else:
        prefix = "'flow/1' || char(9) || " + " || char(9) || ".join(f"({f})" for f in fields)
        json = "blocking_accounts, policy_version, reasons"
    return f"SELECT leaf_index, {prefix}, {json}, flow_id, batch_id FROM {TelemetryFlow._meta.db_table}"


class Canonical(dict):
    """A JSON column's text as the entry holds it (sorted keys, no whitespace), remembered: most flows
    share a handful of reasons."""

    def __missing__(self, text: str) -> str:
        value = orjson.dumps(orjson.loads(text), option=SORTED).decode()
        if len(self) < CACHE_LIMIT:
            self[text] = value
        return value


def flow_leaves(organization_id: int, start: int, stop: int):
    """The organization's flows that are leaves [start, stop), as (leaf_index, entry, label), in leaf order."""
    canonical = Canonical()
    with connection.cursor() as cursor:
        cursor.execute(f"{_select()} WHERE organization_id = %s AND leaf_index >= %s AND leaf_index < %s "
                       "ORDER BY leaf_index", [organization_id, start, stop])
        for leaf, prefix, blocking, policy_version, reasons, flow_id, batch_id in cursor.fetchall():
            entry = f"{prefix}\t{canonical[blocking]}\t{policy_version}\t{canonical[reasons]}".encode()
            yield leaf, entry, f"flow {flow_id} of batch {batch_id}"


def leaf_of(flow: TelemetryFlow) -> tuple[int, bytes]:
    """A flow's leaf index and entry, read back from its row as verification reads it."""
    if flow.leaf_index is None:
        raise ValueError(f"flow {flow.flow_id} was judged before flows were leaves: its evidence is its own event")
    return next(flow_leaves(flow.organization_id, flow.leaf_index, flow.leaf_index + 1))[:2]


def proof_of(flow: TelemetryFlow, *, digest_id: int | None = None) -> dict:
    """The inclusion proof of a judged flow. A flow judged before format 2 is no leaf of its own: its
    evidence is its own flow.permitted/violation event (`audit_seq`), whose proof this is then."""
    about = {"flow": {"flow_id": flow.flow_id, "batch": flow.batch_id}}
    if flow.leaf_index is None:
        event = AuditEvent.objects.get(organization_id=flow.organization_id, seq=flow.audit_seq)
        about["flow"]["proven_by"] = "event"
        about["note"] = (f"This flow was judged before log format 2, as event {event.seq} of kind {event.kind}; "
                         "this proves that event, whose body records the flow.")
        return proofs.event_proof(flow.organization, event, digest_id=digest_id, about=about)
    about["flow"]["proven_by"] = "leaf"
    leaf_index, entry = leaf_of(flow)
    return proofs.inclusion_proof(flow.organization, leaf_index=leaf_index, entry=entry, digest_id=digest_id,
                                  about=about)
