"""The decision API's input check and output shape. Kept lean: it sits in front of every data flow.

A batch holds up to 10,000 requests, so validation is a plain function rather than one nested
serializer per request; errors still name each offending field (`requests[3].account`).
"""
from datetime import datetime
from datetime import timezone as dt_timezone

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from config.api import INSTANT_ERROR, is_instant


MAX_BATCH = 10_000
MAX_ACCOUNTS = 1_000
REQUEST_FIELDS = {"account", "accounts", "data_category", "purpose", "at"}


class DecisionRequestSerializer(serializers.Serializer):
    """Documents one decision request (validated by `parse_requests`)."""

    account = serializers.CharField(required=False, max_length=254, help_text="An account's user_name...")
    accounts = serializers.ListField(child=serializers.CharField(max_length=254), required=False,
                                     min_length=1, max_length=MAX_ACCOUNTS,
                                     help_text="...or several (a meeting's participants).")
    data_category = serializers.CharField(max_length=100)
    purpose = serializers.CharField(max_length=100)
    at = serializers.DateTimeField(required=False, help_text="As of this past instant; default now.")


class DecisionBatchSerializer(serializers.Serializer):
    requests = DecisionRequestSerializer(many=True, min_length=1, max_length=MAX_BATCH)


class DecisionSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.DictField())
    blocking_accounts = serializers.ListField(child=serializers.CharField())
    policy_version = serializers.IntegerField()
    at = serializers.DateTimeField()


class DecisionBatchResultSerializer(serializers.Serializer):
    results = DecisionSerializer(many=True)
    policy_version = serializers.IntegerField()


def _parse_one(item, prefix: str, *, categories, purposes, now: datetime, errors: dict):
    if not isinstance(item, dict):
        errors[prefix or "non_field_errors"] = ["Expected an object."]
        return None
    name = (prefix + ".") if prefix else ""
    for key in item.keys() - REQUEST_FIELDS:
        errors[f"{name}{key}"] = ["Unknown field."]
    if ("account" in item) == ("accounts" in item):
        errors[f"{name}account"] = ["Give either account or accounts."]
        accounts = []
    elif "account" in item:
        accounts = [item["account"]]
        if not isinstance(item["account"], str) or not item["account"]:
            errors[f"{name}account"] = ["Must be a user_name."]
    else:
        accounts = item["accounts"]
        if (not isinstance(accounts, list) or not accounts or len(accounts) > MAX_ACCOUNTS
                or not all(isinstance(a, str) and a for a in accounts)):
            errors[f"{name}accounts"] = [f"Must be a list of 1 to {MAX_ACCOUNTS} user_names."]
            accounts = []
        elif len(set(accounts)) < len(accounts):
            errors[f"{name}accounts"] = ["Names an account more than once."]
    for field, known in (("data_category", categories), ("purpose", purposes)):
        value = item.get(field)
        if not isinstance(value, str) or value not in known:
            errors[f"{name}{field}"] = [f"Unknown {field.replace('_', ' ')} key." if field in item else
                                        "This field is required."]
    at = None
    if "at" in item:
        try:
            at = parse_datetime(item["at"]) if is_instant(item["at"]) else None
            at = None if at is None else (at if timezone.is_aware(at) else timezone.make_aware(at, dt_timezone.utc)
                                          ).astimezone(dt_timezone.utc)
        except (OverflowError, ValueError):  # a 13th month, a year past 9999 once made UTC
            at = None
        if at is None:
            errors[f"{name}at"] = [INSTANT_ERROR]
        elif at > now:
            errors[f"{name}at"] = ["Must not lie in the future."]
    return accounts, item.get("data_category"), item.get("purpose"), at


def parse_requests(data, *, catalog, resolve_accounts):
    """Validate one request or a batch; returns (is_batch, [(account ids, user_names, category, purpose, at)]).

    `resolve_accounts(user_names) -> {user_name: id}` looks accounts up in the caller's organization.
    """
    now = timezone.now()
    categories, purposes = catalog.category_kinds, set(catalog.purpose_keys)
    errors: dict = {}
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
    is_batch = "requests" in data
    if is_batch:
        if set(data) != {"requests"}:
            raise ValidationError({key: ["Unknown field."] for key in set(data) - {"requests"}})
        items = data["requests"]
        if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
            raise ValidationError({"requests": [f"Must be a list of 1 to {MAX_BATCH} requests."]})
        parsed = [_parse_one(item, f"requests[{i}]", categories=categories, purposes=purposes, now=now,
                             errors=errors) for i, item in enumerate(items)]
    else:
        parsed = [_parse_one(data, "", categories=categories, purposes=purposes, now=now, errors=errors)]
    if errors:
        raise ValidationError(errors)
    names = {name for accounts, *_ in parsed for name in accounts}
    ids = resolve_accounts(names)
    unknown = names - ids.keys()
    if unknown:
        for index, (accounts, *_rest) in enumerate(parsed):
            missing = [name for name in accounts if name in unknown]
            if missing:
                prefix = f"requests[{index}]." if is_batch else ""
                errors[f"{prefix}{'accounts' if len(accounts) > 1 else 'account'}"] = [
                    f"Unknown account: {', '.join(missing[:5])}."]
        raise ValidationError(errors)
    return is_batch, [([ids[name] for name in accounts], accounts, category, purpose, at)
                      for accounts, category, purpose, at in parsed]
