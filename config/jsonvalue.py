"""Limits on free-form JSON values, so that whatever the API accepts can be stored and chained.

A free-form value (a consent's `evidence`, say) goes into a PostgreSQL jsonb column and, through
the audit outbox, into the canonical JSON of a chained event (audit/chain.py). Both refuse some
values that JSON parsers accept: jsonb refuses U+0000, and the canonical encoder refuses nesting
deeper than 254 levels and integers outside 64 bits. A value accepted by the API but refused by
the chain would stop the organization's audit trail, so the API checks these limits before
anything is written, and names the field and the place inside it that breaks one.

The limits are documented in the README ("Limits").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

import orjson


@dataclass(frozen=True)
class JSONLimits:
    max_depth: int = 8           # objects and arrays nested, the outermost counting as 1
    max_bytes: int = 16 * 1024   # of the canonical UTF-8 encoding
    max_members: int = 256       # object members and array items, counted over the whole value
    max_key_length: int = 128
    max_integer: int = 2**53 - 1  # exact in every JSON reader (IEEE-754 doubles), JavaScript's included
    # Keys that are not plain str (ints, enum members) are written as strings by the database's JSON
    # encoder, so the chain later reads strings: acceptable for values our own code builds.
    string_keys_only: bool = True


EVIDENCE_LIMITS = JSONLimits()

# What the chain itself can hold, whoever wrote the value: checked again when a change is recorded.
CHAIN_LIMITS = JSONLimits(max_depth=64, max_bytes=1024 * 1024, max_members=100_000, max_key_length=1024,
                          max_integer=2**63 - 1, string_keys_only=False)
_SCALAR_KEYS = (str, int, float, bool, type(None))


class JSONValueError(ValueError):
    """A JSON value outside the limits; `path` names the place inside it (`$.a[3]`)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def check_json_value(value, limits: JSONLimits = EVIDENCE_LIMITS) -> bytes:
    """Check a parsed JSON value against the limits; returns its canonical encoding (sorted keys).

    Raises JSONValueError naming the first place that breaks a limit. Iterative, so a value nested
    thousands of levels deep is refused without recursing through it.
    """
    members = 0
    stack = [(value, "$", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limits.max_depth:
                raise JSONValueError(path, f"nested deeper than {limits.max_depth} levels.")
            members += len(item)
            if members > limits.max_members:
                raise JSONValueError(path, f"more than {limits.max_members} members and items in all.")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str if limits.string_keys_only else _SCALAR_KEYS):
                        raise JSONValueError(path, "object keys must be strings.")
                    if isinstance(key, str):
                        if len(key) > limits.max_key_length:
                            raise JSONValueError(path, f"a key is longer than {limits.max_key_length} characters.")
                        _check_text(key, path, "a key")
                    stack.append((child, f"{path}.{key}", depth + 1))
            else:
                stack.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))
        elif isinstance(item, str):
            _check_text(item, path, "a string")
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int):
            if abs(item) > limits.max_integer:
                raise JSONValueError(path, f"integers must lie within ±{limits.max_integer}.")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JSONValueError(path, "numbers must be finite.")
        else:
            raise JSONValueError(path, f"{type(item).__name__} is not a JSON value.")
    try:
        option = orjson.OPT_SORT_KEYS | (0 if limits.string_keys_only else orjson.OPT_NON_STR_KEYS)
        encoded = orjson.dumps(value, option=option)
    except orjson.JSONEncodeError as exc:  # anything the walk above did not foresee
        raise JSONValueError("$", f"cannot be encoded canonically ({exc}).") from None
    if len(encoded) > limits.max_bytes:
        raise JSONValueError("$", f"{len(encoded)} bytes encoded; the limit is {limits.max_bytes}.")
    return encoded


WITHHELD = "(withheld: nested deeper than {} levels)"


def displayable(value, max_depth: int = 64):
    """The value for display, with whatever lies deeper than max_depth replaced by a marker string.

    Rows stored before the limits above existed may nest deeper than any JSON encoder will write
    (orjson stops at 254 levels); reading them must still answer. Iterative, like the check.
    """
    if not isinstance(value, (dict, list)):
        return value
    root = {} if isinstance(value, dict) else []
    stack = [(value, root, 1)]
    while stack:
        source, target, depth = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, child in items:
            if isinstance(child, (dict, list)):
                if depth >= max_depth:
                    copy = WITHHELD.format(max_depth)
                else:
                    copy = {} if isinstance(child, dict) else []
                    stack.append((child, copy, depth + 1))
            else:
                copy = child
            if isinstance(target, dict):
                target[key] = copy
            else:
                target.append(copy)
    return root


def _check_text(text: str, path: str, what: str) -> None:
    if "\x00" in text:
        raise JSONValueError(path, f"{what} holds a NUL character (U+0000).")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise JSONValueError(path, f"{what} holds a lone surrogate, which is not Unicode text.") from None


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": (f"Free-form JSON object: at most {EVIDENCE_LIMITS.max_depth} levels deep, "
                                      f"{EVIDENCE_LIMITS.max_bytes} bytes and {EVIDENCE_LIMITS.max_members} "
                                      f"members in all; no NUL characters; integers within ±2^53−1.")})
class BoundedJSONObjectField(serializers.Field):
    """A free-form JSON object within limits; stored as the canonical form was read back."""

    default_error_messages = {"not_object": "Expected a JSON object."}

    def __init__(self, *, limits: JSONLimits = EVIDENCE_LIMITS, **kwargs):
        self.limits = limits
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_object")
        try:
            return orjson.loads(check_json_value(data, self.limits))
        except JSONValueError as exc:
            raise serializers.ValidationError(f"{exc.path}: {exc.message}") from None

    def to_representation(self, value):
        return displayable(value)
