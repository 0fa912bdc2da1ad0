"""Judged flows as leaves of their organization's log: each row rebuilt into its entry, byte for byte."""
import orjson
from django.db import connection

from audit import proofs
from audit.models import AuditEvent
from config.db import stream_rows

from .judging import SORTED, flow_entry
from .models import TelemetryFlow

COLUMNS = ("leaf_index", "batch_id", "flow_id", "occurred_at", "data_category", "purpose", "destination", "volume",
           "account_ids", "verdict", "blocking_accounts", "reasons", "policy_version")


def _instant(column: str) -> str:
    """SQL writing an instant as the chain writes it (`audit.chain.iso`)."""
    if connection.vendor == "postgresql":
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    return f"replace({column}, ' ', 'T') || CASE WHEN length({column}) = 19 THEN '.000000Z' ELSE 'Z' END"


def _canonical(value) -> str:
    """A JSON column as the entry holds it: PostgreSQL hands jsonb back parsed, SQLite as text."""
    if isinstance(value, str):
        value = orjson.loads(value)
    return orjson.dumps(value, option=SORTED).decode()


def entry_of(organization_id: int, row) -> bytes:
    """The entry of a flow row given as COLUMNS[1:] (instants written by `_instant`)."""
    batch_id, flow_id, occurred_at, category, purpose, destination, volume, account_ids, verdict, blocking, \
        reasons, policy_version = row
    return flow_entry(organization_id, batch_id, flow_id, occurred_at, category, purpose, destination, volume,
                      account_ids, verdict, _canonical(blocking), policy_version, _canonical(reasons))


def flow_leaves(organization_id: int, start: int, stop: int):
    """The organization's flows that are leaves [start, stop), as (leaf_index, entry, label), in leaf order."""
    columns = ", ".join(_instant(c) if c == "occurred_at" else c for c in COLUMNS)
    sql = (f"SELECT {columns} FROM {TelemetryFlow._meta.db_table} WHERE organization_id = %s "
           f"AND leaf_index >= %s AND leaf_index < %s ORDER BY leaf_index")
    for row in stream_rows(sql, [organization_id, start, stop]):
        yield row[0], entry_of(organization_id, row[1:]), f"flow {row[2]} of batch {row[1]}"


def leaf_of(flow: TelemetryFlow) -> tuple[int, bytes]:
    """A flow's leaf index and entry, read back from its row as verification reads it."""
    columns = ", ".join(_instant(c) if c == "occurred_at" else c for c in COLUMNS[1:])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {TelemetryFlow._meta.db_table} WHERE id = %s", [flow.pk])
        row = cursor.fetchone()
    return flow.leaf_index, entry_of(flow.organization_id, row)


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
