"""Judging flows: each decided as of its occurred_at, then written with its verdict and its audit event."""
from collections import defaultdict
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
                "audit_seq", "recorded_at")
LINK_COLUMNS = ("flow_id", "account_id", "blocking")


def write_judged(organization, batch: FlowBatch, judged, head, memberships) -> dict:
    """Append the flows' audit events, then write the flows and account links in bulk; returns the
    counts by verdict."""
    now = timezone.now()
    actor = batch.submitted_by
    ids = reserve_ids(TelemetryFlow, len(judged))
    entries, flow_rows, links, counts = [], [], [], defaultdict(int)
    dumps, Entry = orjson.dumps, ledger.Entry
    for flow_pk, (flow, at, decision, user_names) in zip(ids, judged):
        flow_id, account_ids, category, purpose, destination, occurred_at, volume = flow
        allowed = decision.allowed
        verdict, kind = ((Verdict.PERMITTED, EventKind.FLOW_PERMITTED) if allowed
                         else (Verdict.VIOLATION, EventKind.FLOW_VIOLATION))
        counts[verdict] += 1
        if allowed:
            blocking, reasons = [], decision_payload(decision, user_names[:1])["reasons"]
        else:
            blocking = [name for name, d in zip(user_names, decision.accounts) if not d.allowed]
            reasons = blocking_reasons(decision, user_names)
        subject = next((d.account_id for d in decision.accounts if not d.allowed), account_ids[0])
        entries.append(Entry(kind, at, actor, subject, {
            "flow_id": flow_id, "batch": batch.pk, "accounts": user_names, "data_category": category,
            "purpose": purpose, "destination": destination, "volume": volume, "verdict": verdict,
            "blocking_accounts": blocking, "reasons": reasons, "policy_version": decision.policy_version},
            occurred_iso=occurred_at))
        flow_rows.append([flow_pk, organization.pk, flow_id, batch.pk, at, category, purpose, destination, volume,
                          len(account_ids), verdict, dumps(blocking).decode(), dumps(reasons).decode(),
                          decision.policy_version, None, now])
        links.extend((flow_pk, d.account_id, not d.allowed) for d in decision.accounts)
    appended = ledger.append(head, entries, recorded_at=now)
    if appended.stopped_at is not None:  # our own records, built above: a bug, not bad input
        raise chain.Unchainable(f"flow {judged[appended.stopped_at][0][0]} cannot be chained: {appended.error}")
    for seq, row in enumerate(flow_rows, start=appended.first_seq):
        row[14] = seq  # audit_seq: the flow's event in the chain
    copy_rows(TelemetryFlow, FLOW_COLUMNS, flow_rows)
    copy_rows(FlowAccount, LINK_COLUMNS, links)
    roll_up(organization, judged, memberships)
    return dict(counts)
