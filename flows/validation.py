"""A posted batch of flows checked at the door, cheaply and completely: accepted whole or refused whole.

Refusals raise `InvalidBatch`, naming each offending item and field; the API answers it as a 400.
"""
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.utils import timezone

from audit import chain

from .errors import InvalidBatch

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


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _field(value, max_length: int) -> bool:
    """A non-empty string without control characters: a field of the flow's leaf entry, which TABs separate
    (docs/audit-chain.md "The flow entry")."""
    return isinstance(value, str) and 0 < len(value) <= max_length and not CONTROL.search(value)


def validate_flows(data, *, catalog, resolve_accounts) -> list[list]:
    """Check a posted batch cheaply and completely; returns the flows ready to store.

    Each stored flow is [flow_id, [account ids], data_category, purpose, destination, occurred_at
    (ISO, UTC), volume]. Errors name the offending item and field (`flows[12].purpose`).
    """
    if not isinstance(data, dict) or set(data) != {"flows"}:
        extra = sorted(set(data) - {"flows"}) if isinstance(data, dict) else []
        raise InvalidBatch({name: ["Unknown field."] for name in extra} or {"flows": ["This field is required."]})
    items = data["flows"]
    if not isinstance(items, list) or not items or len(items) > MAX_FLOWS:
        raise InvalidBatch({"flows": [f"Must be a list of 1 to {MAX_FLOWS} flows."]})
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
        if not _field(flow_id, 200):
            errors[f"{where}.flow_id"] = ["Must be a string of 1 to 200 characters, without control characters."]
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
        if not _field(destination, 200):
            errors[f"{where}.destination"] = ["Must be a string of 1 to 200 characters, without control "
                                              "characters."]
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
        raise InvalidBatch(errors)
    ids = resolve_accounts(names)
    unknown = names - ids.keys()
    if unknown:
        for index, flow in enumerate(flows):
            missing = [name for name in flow[1] if name in unknown]
            if missing:
                errors[f"flows[{index}].accounts"] = [f"Unknown account: {', '.join(missing[:5])}."]
            if len(errors) > 100:
                break
        raise InvalidBatch(errors)
    for flow in flows:
        flow[1] = [ids[name] for name in flow[1]]
    return flows
