"""Reported data flows: validated whole at the door, judged by workers against the policy as it was.

A batch is accepted whole or refused whole. Accepted, it is stored as one row in the request's
transaction and answered 202; a worker then judges every flow as of its `occurred_at`, writes the
flows with their verdicts, appends one audit event per flow to the organization's chain and
updates the exposure rollups, all in one transaction that also marks the batch done. A worker
that dies halfway leaves the batch as it was received, for the next attempt.
"""
from collections import defaultdict
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from accounts.models import Account
from governance.decisions import blocking_reasons, decision_payload
from governance.selectors import compiled_policy, policy_at

from config.db import copy_rows, reserve_ids

from . import chain, ledger
from .webhooks import notify_violations
from .models import EventKind, ExposureRollup, ExposureSeen, FlowAccount, FlowBatch, TelemetryFlow, Verdict

MAX_FLOWS = 10_000
MAX_ACCOUNTS_PER_FLOW = 1_000
FLOW_FIELDS = {"flow_id", "accounts", "data_category", "purpose", "destination", "occurred_at", "volume"}
USER_NAME_MAX = 254
CLOCK_SKEW = timedelta(minutes=5)  # reporters' clocks run a little ahead; beyond this a flow is refused


def _instant(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        instant = datetime.fromisoformat(value)
        return instant.astimezone(dt_timezone.utc) if instant.tzinfo else instant
    except (ValueError, OverflowError):
        return None


def _text(value, max_length: int) -> bool:
    """A non-empty string a text column can hold (PostgreSQL refuses NUL)."""
    return isinstance(value, str) and 0 < len(value) <= max_length and "\x00" not in value


def validate_flows(data, *, catalog, resolve_accounts) -> list[list]:
    """Check a posted batch cheaply and completely; returns the flows ready to store.

    Each stored flow is [flow_id, [account ids], data_category, purpose, destination, occurred_at
    (ISO, UTC), volume]. Errors name the offending item and field (`flows[12].purpose`).
    """
    if not isinstance(data, dict) or set(data) != {"flows"}:
        extra = sorted(set(data) - {"flows"}) if isinstance(data, dict) else []
        raise ValidationError({name: ["Unknown field."] for name in extra} or {"flows": ["This field is required."]})
    items = data["flows"]
    if not isinstance(items, list) or not items or len(items) > MAX_FLOWS:
        raise ValidationError({"flows": [f"Must be a list of 1 to {MAX_FLOWS} flows."]})
    categories, purposes = catalog.category_kinds, set(catalog.purpose_keys)
    latest = timezone.now() + CLOCK_SKEW
    errors, flows, names, seen_ids = {}, [], set(), set()
    for index, item in enumerate(items):
        where = f"flows[{index}]"
        if not isinstance(item, dict):
            errors[where] = ["Expected an object."]
            continue
        for key in item.keys() - FLOW_FIELDS:
            errors[f"{where}.{key}"] = ["Unknown field."]
        flow_id = item.get("flow_id")
        if not _text(flow_id, 200):
            errors[f"{where}.flow_id"] = ["Must be a string of 1 to 200 characters, without NUL."]
        elif flow_id in seen_ids:
            errors[f"{where}.flow_id"] = ["Repeated within the batch."]
        else:
            seen_ids.add(flow_id)
        accounts = item.get("accounts")
        if (not isinstance(accounts, list) or not 0 < len(accounts) <= MAX_ACCOUNTS_PER_FLOW
                or not all(_text(name, USER_NAME_MAX) for name in accounts)):
            errors[f"{where}.accounts"] = [f"Must be a list of 1 to {MAX_ACCOUNTS_PER_FLOW} user_names."]
            accounts = []
        elif len(set(accounts)) != len(accounts):
            errors[f"{where}.accounts"] = ["Names an account more than once."]
            accounts = []
        names.update(accounts)
        for field, known in (("data_category", categories), ("purpose", purposes)):
            value = item.get(field)
            if not isinstance(value, str) or value not in known:
                errors[f"{where}.{field}"] = [f"Unknown {field.replace('_', ' ')} key."]
        destination = item.get("destination")
        if not _text(destination, 200):
            errors[f"{where}.destination"] = ["Must be a string of 1 to 200 characters, without NUL."]
        occurred = _instant(item.get("occurred_at"))
        if occurred is None or occurred.tzinfo is None:
            errors[f"{where}.occurred_at"] = ["Must be an ISO 8601 date-time with a time zone."]
        elif occurred > latest:
            errors[f"{where}.occurred_at"] = ["Must not lie in the future."]
        volume = item.get("volume", 0)
        if not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume < 2**62:
            errors[f"{where}.volume"] = ["Must be a non-negative integer."]
        if len(errors) > 100:
            break  # enough to act on; a batch is refused whole anyway
        flows.append([flow_id, accounts, item.get("data_category"), item.get("purpose"), destination,
                      chain.iso(occurred) if occurred else None, volume])
    if errors:
        raise ValidationError(errors)
    ids = resolve_accounts(names)
    unknown = names - ids.keys()
    if unknown:
        for index, flow in enumerate(flows):
            missing = [name for name in flow[1] if name in unknown]
            if missing:
                errors[f"flows[{index}].accounts"] = [f"Unknown account: {', '.join(missing[:5])}."]
            if len(errors) > 100:
                break
        raise ValidationError(errors)
    for flow in flows:
        flow[1] = [ids[name] for name in flow[1]]
    return flows


@transaction.atomic
def receive_batch(*, organization, actor, flows: list[list]) -> FlowBatch:
    """Store a validated batch; a worker is asked to judge it once this transaction commits."""
    batch = FlowBatch.objects.create(organization=organization, flow_count=len(flows),
                                     payload=orjson.dumps(flows), received_at=timezone.now(),
                                     submitted_by=actor.as_dict())

    def enqueue():
        from .tasks import process_flow_batch
        process_flow_batch.delay(batch.pk)

    # robust: with the broker down the batch is stored all the same, and the sweep judges it later
    transaction.on_commit(enqueue, robust=True)
    return batch


def process_batch(batch_id: int) -> dict:
    """Judge a stored batch, exactly once: a second run, or one after a crash, finds it done or redoes it whole."""
    try:
        with transaction.atomic():
            batch = FlowBatch.objects.select_for_update().filter(pk=batch_id).first()
            if batch is None or batch.status == FlowBatch.Status.DONE:
                return batch.counts if batch else {}
            organization = batch.organization
            flows = orjson.loads(bytes(batch.payload))
            existing = set(TelemetryFlow.objects.filter(organization=organization,
                                                        flow_id__in=[f[0] for f in flows])
                           .values_list("flow_id", flat=True))
            fresh = [f for f in flows if f[0] not in existing]
            compiled = compiled_policy(organization)
            judged = _judge(organization, compiled, fresh)
            head = ledger.locked_head(organization.pk)
            counts = _write(organization, batch, judged, head, compiled.memberships)
            counts["duplicate"] = len(flows) - len(fresh)
            FlowBatch.objects.filter(pk=batch.pk).update(status=FlowBatch.Status.DONE, processed_at=timezone.now(),
                                                         counts=counts, attempts=batch.attempts + 1)
            if counts.get(Verdict.VIOLATION):
                notify_violations(organization, batch.pk)
    except ledger.ChainStalled as exc:
        # Appending these flows would put them ahead of changes made before them: the batch waits,
        # stored, and the sweep brings it back once the chain goes on (docs/operations.md).
        return {"waiting": str(exc)}
    return counts


def _judge(organization, compiled, flows: list[list]):
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


def _write(organization, batch: FlowBatch, judged, head, memberships) -> dict:
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
    _roll_up(organization, judged, memberships)
    return dict(counts)


def _roll_up(organization, judged, memberships) -> None:
    """Add the batch to the per-day exposure rollups, counting each account once per day and cell,
    under the groups it was in when the flow occurred."""
    cells = defaultdict(lambda: [0, 0, set()])  # (day, group, category, purpose, destination, verdict)
    for flow, at, decision, _ in judged:
        _, account_ids, category, purpose, destination, _, volume = flow
        verdict = Verdict.PERMITTED if decision.allowed else Verdict.VIOLATION
        day = at.date()
        touched = {}
        for account_id in account_ids:
            for group in memberships.groups_at(account_id, at) or (0,):
                touched.setdefault(group, []).append(account_id)
        for group, members in touched.items():
            cell = cells[(day, group, category, purpose, destination, verdict)]
            cell[0] += 1
            cell[1] += volume
            cell[2].update(members)
    if not cells:
        return
    seen = {(day, account_id, category, purpose, destination, verdict)
            for (day, _, category, purpose, destination, verdict), (_, _, members) in cells.items()
            for account_id in members}
    new = _insert_seen(organization, seen)
    rows = []
    for (day, group, category, purpose, destination, verdict), (flows, volume, members) in cells.items():
        fresh = sum(1 for a in members if (day, a, category, purpose, destination, verdict) in new)
        rows.append((organization.pk, day, group, category, purpose, destination, verdict, flows, volume, fresh))
    _upsert_rollups(rows)


SEEN_COLUMNS = ("organization_id", "day", "account_id", "data_category", "purpose", "destination", "verdict")


def _insert_seen(organization, seen: set) -> set:
    """Insert (day, account, cell) facts not seen yet; returns the ones that were new.

    The facts are copied into a temporary table first, then inserted in one statement that skips
    the known ones and returns the rest: thousands of facts cost two statements.
    """
    if not seen:
        return set()
    table = ExposureSeen._meta.db_table
    columns = ", ".join(SEEN_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS batch_seen AS SELECT {columns} FROM {table} WHERE 1 = 0")
        cursor.execute("DELETE FROM batch_seen")
        copy_rows(_BatchSeen, SEEN_COLUMNS, [(organization.pk, *fact) for fact in seen])
        # "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM batch_seen WHERE true "
                       f"ON CONFLICT DO NOTHING RETURNING day, account_id, data_category, purpose, destination, "
                       f"verdict")
        rows = cursor.fetchall()
    return {(day if isinstance(day, date) else date.fromisoformat(day), account_id, category, purpose, destination, verdict)
            for day, account_id, category, purpose, destination, verdict in rows}


class _BatchSeen:
    """The temporary table `_insert_seen` copies into (for copy_rows, which needs a table name)."""

    class _meta:
        db_table = "batch_seen"


def _upsert_rollups(rows: list[tuple]) -> None:
    table = ExposureRollup._meta.db_table
    columns = "organization_id, day, group_key, data_category, purpose, destination, verdict, flows, volume, accounts"
    conflict = "organization_id, day, group_key, data_category, purpose, destination, verdict"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT ({conflict}) DO UPDATE SET "
                f"flows = {table}.flows + excluded.flows, volume = {table}.volume + excluded.volume, "
                f"accounts = {table}.accounts + excluded.accounts",
                [p for row in chunk for p in row])


def stale_batches(older_than: timedelta) -> list[int]:
    cutoff = timezone.now() - older_than
    return list(FlowBatch.objects.filter(status=FlowBatch.Status.RECEIVED, received_at__lte=cutoff)
                .order_by("received_at").values_list("pk", flat=True)[:settings.FLOW_SWEEP_LIMIT])
