"""Judging flows: each decided as of its occurred_at, then written with its verdict as a leaf of the log."""
from datetime import datetime

import orjson
from django.utils import timezone

from accounts.models import Account
from audit import chain, ledger
from audit.models import EventKind
from config.db import copy_rows, reserve_ids
from governance.decisions import blocking_reasons, decision_payload
from governance.selectors import policy_at

from .models import FlowAccount, FlowBatch, TelemetryFlow, Verdict
from .rollups import roll_up


def judge(organization, compiled, flows: list[list]):
    """Decide each flow as of its occurred_at; returns (flow, instant, decision, user_names) tuples."""
    all_ids = sorted({account_id for flow in flows for account_id in flow[1]})
    names = dict(Account.objects.filter(pk__in=all_ids).values_list("pk", "user_name")) if all_ids else {}
    periods: dict = {}
    judged = []
    for flow in flows:
        at = datetime.fromisoformat(flow[5])
        policy = policy_at(organization, at, all_ids, compiled, periods)
        decision = policy.decide(flow[1], flow[2], flow[3], at)
        judged.append((flow, at, decision, [names[a] for a in flow[1]]))
    return judged


FLOW_COLUMNS = ("id", "organization_id", "flow_id", "batch_id", "occurred_at", "data_category", "purpose",
                "destination", "volume", "account_count", "verdict", "blocking_accounts", "reasons", "policy_version",
                "audit_seq", "recorded_at", "account_ids", "leaf_index")
LINK_COLUMNS = ("flow_id", "account_id", "blocking")
SORTED = orjson.OPT_SORT_KEYS


def flow_entry(organization_id: int, batch_id: int, flow_id: str, occurred_at: str, data_category: str,
               purpose: str, destination: str, volume: int, account_ids: str, verdict: str, blocking_json: str,
               policy_version: int, reasons_json: str) -> bytes:
    """A judged flow's leaf entry: its fields, TAB-separated, UTF-8 (docs/audit-chain.md "The flow entry").
    The JSON fields are canonical (sorted keys, no whitespace); the others hold no control character."""
    return (f"flow/1\t{organization_id}\t{batch_id}\t{flow_id}\t{occurred_at}\t{data_category}\t{purpose}\t"
            f"{destination}\t{volume}\t{account_ids}\t{verdict}\t{blocking_json}\t{policy_version}\t"
            f"{reasons_json}").encode()


def write_judged(organization, batch: FlowBatch, judged, head, memberships, *, duplicates: int = 0) -> dict:
    """Add the flows as leaves of the organization's log, append the batch's event, then write the flows
    and account links in bulk; returns the counts by verdict (and the duplicates left out)."""
    now = timezone.now()
    ids = reserve_ids(TelemetryFlow, len(judged))
    entries, flow_rows, links, counts = [], [], [], {Verdict.PERMITTED: 0, Verdict.VIOLATION: 0}
    dumps, org_id, batch_id = orjson.dumps, organization.pk, batch.pk
    for flow_pk, (flow, at, decision, user_names) in zip(ids, judged):
        flow_id, account_ids, category, purpose, destination, occurred_at, volume = flow
        if decision.allowed:
            verdict, blocking, reasons = (Verdict.PERMITTED, [],
                                          decision_payload(decision, user_names[:1])["reasons"])
        else:
            verdict = Verdict.VIOLATION
            blocking = [name for name, d in zip(user_names, decision.accounts) if not d.allowed]
            reasons = blocking_reasons(decision, user_names)
        counts[verdict] += 1
        blocking_json, reasons_json = dumps(blocking, option=SORTED).decode(), dumps(reasons, option=SORTED).decode()
        ids_text = ",".join(map(str, account_ids))
        entries.append(flow_entry(org_id, batch_id, flow_id, occurred_at, category, purpose, destination, volume,
                                  ids_text, verdict, blocking_json, decision.policy_version, reasons_json))
        flow_rows.append([flow_pk, org_id, flow_id, batch_id, at, category, purpose, destination, volume,
                          len(account_ids), verdict, blocking_json, reasons_json, decision.policy_version,
                          None, now, ids_text, None])
        links.extend((flow_pk, d.account_id, not d.allowed) for d in decision.accounts)
    first_leaf, leaves_root = ledger.append_flows(head, entries)
    counts = {str(verdict): n for verdict, n in counts.items()} | {"duplicate": duplicates}
    appended = ledger.append(head, [ledger.Entry(EventKind.FLOW_BATCH, now, batch.submitted_by, None, {
        "batch": batch_id, "first_leaf": first_leaf, "leaf_count": len(entries), "leaves_root": leaves_root,
        "counts": counts})], recorded_at=now)
    if appended.stopped_at is not None:  # our own record, built above: a bug, not bad input
        raise chain.Unchainable(f"batch {batch_id} cannot be chained: {appended.error}")
    for leaf, row in enumerate(flow_rows, start=first_leaf):
        row[14], row[17] = appended.first_seq, leaf  # its batch's event; its leaf
    copy_rows(TelemetryFlow, FLOW_COLUMNS, flow_rows)
    copy_rows(FlowAccount, LINK_COLUMNS, links)
    roll_up(organization, judged, memberships)
    return counts
