"""SCIM filters (RFC 7644 §3.4.2.2) as Django Q objects.

scim2-models parses the filter into its syntax tree (its grammar applies the RFC errata and reads
Entra's `emails[type eq "work"].value eq "…"`); this module walks that tree and emits Q objects,
never SQL text. Each attribute the server stores maps to a column; a multi-valued attribute backed
by a relation (a user's groups, a group's members) becomes an EXISTS subquery, so `and`/`or`/`not`
combine without duplicate rows. Attribute names are case-insensitive; string comparisons follow
the attribute's caseExact.
"""
from dataclasses import dataclass
from datetime import timezone as dt_timezone
from functools import reduce

from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Lower
from django.db.models.lookups import GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual
from django.utils.dateparse import parse_datetime
from scim2_models import ScimFilter
from scim2_models.path import (AttrPath, CompareOperator, Comparison, FilterVisitor, LogicalExpr,
                               LogicalOperator, Not, Present, ValuePath)

from accounts.models import AccountGroup

from .errors import invalid_filter
from .schemas import AI_GOVERNANCE_URN, ENTERPRISE_USER_URN, GROUP_URN, IGNORED_USER_ATTRIBUTES, USER_URN

NOTHING = Q(pk__in=[])
EVERYTHING = Q(pk__isnull=False)  # not Q(): a negated empty Q would still match everything
MAX_FILTER_LENGTH = 4000


@dataclass(frozen=True)
class Column:
    """A stored attribute: a column, its type and whether string comparisons are case-exact."""

    field: str
    type: str = "string"  # string | boolean | dateTime | id
    case_exact: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Constant:
    """A sub-attribute with one value wherever its attribute has one (emails.type is always work)."""

    value: object


@dataclass(frozen=True)
class Relation:
    """A multi-valued attribute held in AccountGroup rows: `outer` links them to the filtered row."""

    outer: str
    items: dict  # sub-attribute (lower case) -> Column or Constant, over AccountGroup


@dataclass(frozen=True)
class Embedded:
    """A multi-valued attribute stored as one value on the row itself (an account's one email)."""

    present: Q
    items: dict  # sub-attribute (lower case) -> Column or Constant, over the filtered model


EMAIL_ITEMS = {"value": Column("email"), "type": Constant("work"), "primary": Constant(True)}
META = {"created": Column("created_at", "dateTime"), "lastmodified": Column("updated_at", "dateTime"),
        "resourcetype": None}

USER_ATTRIBUTES = {
    "id": Column("pk", "id"),
    "username": Column("user_name"),
    "displayname": Column("display_name"),
    "externalid": Column("external_id", case_exact=True, nullable=True),
    "active": Column("active", "boolean"),
    "emails": Embedded(~Q(email=""), EMAIL_ITEMS),
    "groups": Relation("account", {"value": Column("group_id", "id"), "display": Column("group__display_name"),
                                   "type": Constant("direct")}),
    "meta": {**META, "resourcetype": Constant("User")},
}
GROUP_ATTRIBUTES = {
    "id": Column("pk", "id"),
    "displayname": Column("display_name"),
    "externalid": Column("external_id", case_exact=True, nullable=True),
    "members": Relation("group", {"value": Column("account_id", "id"), "display": Column("account__display_name"),
                                  "type": Constant("User")}),
    "meta": {**META, "resourcetype": Constant("Group")},
}


def parse(expression: str):
    if len(expression) > MAX_FILTER_LENGTH:
        raise invalid_filter(f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
    try:
        return ScimFilter(expression).ast
    except Exception as error:  # the parser's own exceptions, or ValueError from its builder
        raise invalid_filter(f"Invalid filter: {error}") from None


def user_filter(expression: str, *, unknown_is_false: bool = False) -> Q:
    return _Builder(USER_ATTRIBUTES, USER_URN, (AI_GOVERNANCE_URN, ENTERPRISE_USER_URN), IGNORED_USER_ATTRIBUTES,
                    unknown_is_false).visit(parse(expression))


def group_filter(expression: str, *, unknown_is_false: bool = False) -> Q:
    return _Builder(GROUP_ATTRIBUTES, GROUP_URN, (), frozenset(), unknown_is_false).visit(parse(expression))


class _Unknown(Exception):
    """An attribute this resource type does not have, in a search over several types: it is false."""


def _check_text(value):
    if isinstance(value, str) and "\x00" in value:
        raise invalid_filter("A filter value cannot hold a NUL character.")
    return value


def _compare_constant(constant, op: CompareOperator, value) -> bool:
    actual = constant.value
    if isinstance(actual, bool) or isinstance(value, bool):
        if op in (CompareOperator.eq, CompareOperator.ne) and isinstance(value, bool) == isinstance(actual, bool):
            return (actual == value) == (op == CompareOperator.eq)
        raise invalid_filter(f"'{op.value}' does not compare a boolean with {value!r}.")
    if not isinstance(value, str):
        raise invalid_filter(f"{value!r} is not a string.")
    a, v = actual.lower(), value.lower()
    return {"eq": a == v, "ne": a != v, "co": v in a, "sw": a.startswith(v), "ew": a.endswith(v),
            "gt": a > v, "ge": a >= v, "lt": a < v, "le": a <= v}[op.value]


def column_comparison(column: Column, op: CompareOperator, value, name: str) -> Q:
    value = _check_text(value)
    field = column.field
    if value is None:
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise invalid_filter(f"null can only be compared with eq or ne ({name}).")
        absent = column_present(column, name)
        return ~absent if op == CompareOperator.eq else absent
    if column.type == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise invalid_filter(f"{name} is a boolean; {value!r} is not.")
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise invalid_filter(f"{name} is a boolean: only eq, ne and pr apply.")
        q = Q(**{field: value})
        return q if op == CompareOperator.eq else ~q
    if column.type == "id":
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise invalid_filter(f"{name} is an identifier: only eq, ne and pr apply.")
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise invalid_filter(f"{name} is compared with a string; {value!r} is not one.")
        text = str(value)
        q = Q(**{field: int(text)}) if text.isdigit() and len(text) < 19 else NOTHING
        return q if op == CompareOperator.eq else ~q
    if column.type == "dateTime":
        if not isinstance(value, str) or (instant := parse_datetime(value)) is None:
            raise invalid_filter(f"{name} is compared with a dateTime such as \"2026-01-31T12:00:00Z\"; "
                                 f"{value!r} is not one.")
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=dt_timezone.utc)
        if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
            raise invalid_filter(f"'{op.value}' does not apply to the dateTime {name}.")
        return _ordered(op, F(field), instant, field)
    if not isinstance(value, str):
        raise invalid_filter(f"{name} is a string; compare it with a quoted value, not {value!r}.")
    if column.case_exact:
        lookups = {"eq": "exact", "co": "contains", "sw": "startswith", "ew": "endswith"}
        if op.value in lookups:
            return Q(**{f"{field}__{lookups[op.value]}": value})
        if op == CompareOperator.ne:
            return ~Q(**{field: value})
        return _ordered(op, F(field), value, field)
    if op == CompareOperator.eq:
        return iexact(field, value)
    lookups = {"co": "icontains", "sw": "istartswith", "ew": "iendswith"}
    if op.value in lookups:
        return Q(**{f"{field}__{lookups[op.value]}": value})
    if op == CompareOperator.ne:
        return ~Q(**{f"{field}__iexact": value})
    return _ordered(op, Lower(field), value.lower(), field)


def _ordered(op: CompareOperator, lhs, value, field: str) -> Q:
    if op == CompareOperator.eq:
        return Q(**{field: value})
    if op == CompareOperator.ne:
        return ~Q(**{field: value})
    lookup = {"gt": GreaterThan, "ge": GreaterThanOrEqual, "lt": LessThan, "le": LessThanOrEqual}[op.value]
    return Q(lookup(lhs, value))


def iexact(field: str, value: str) -> Q:
    """field equal to value without regard to case (UPPER(field) = UPPER(value)).

    For userName, the (organization_id, UPPER(user_name)) index serves it: Okta's lookups and the
    uniqueness check read one index entry, not every account of the organization.
    """
    return Q(**{f"{field}__iexact": value})


def column_present(column: Column, name: str) -> Q:
    if column.type in ("boolean", "dateTime", "id"):
        return EVERYTHING
    present = ~Q(**{column.field: ""})
    return Q(**{f"{column.field}__isnull": False}) & present if column.nullable else present


class _QVisitor(FilterVisitor[Q]):
    """`and`, `or` and `not` over the Q objects the concrete visitors build for comparisons."""

    def visit_logical_expr(self, node: LogicalExpr) -> Q:
        parts = [self.visit(term) for term in node.terms]
        return reduce((lambda a, b: a & b) if node.op == LogicalOperator.and_ else (lambda a, b: a | b), parts)

    def visit_not(self, node: Not) -> Q:
        return ~self.visit(node.expr)


class _Builder(_QVisitor):
    """Q objects for a filter over the Users or Groups table."""

    def __init__(self, attributes: dict, core_urn: str, extensions: tuple[str, ...], unstored: frozenset,
                 unknown_is_false: bool = False):
        self.attributes = attributes
        self.core_urn = core_urn.lower()
        self.extensions = {urn.lower() for urn in extensions}
        self.unstored = unstored  # schema attributes this server accepts but does not keep
        # RFC 7644 §3.4.2.1: a search over several resource types evaluates an attribute one of them
        # lacks to false for that type, instead of refusing the filter.
        self.unknown_is_false = unknown_is_false

    def visit(self, node) -> Q:
        if not self.unknown_is_false or isinstance(node, (LogicalExpr, Not)):
            return super().visit(node)
        try:
            return super().visit(node)
        except _Unknown:
            return NOTHING

    def _lookup(self, attr_path: AttrPath):
        """(attribute entry, sub-attribute name or None, the name as written) for a filter path."""
        name = str(attr_path)
        if self.unknown_is_false and not self._declared(attr_path):
            raise _Unknown(name)
        if attr_path.uri is not None and attr_path.uri.lower() != self.core_urn:
            if attr_path.uri.lower() in self.extensions:
                raise invalid_filter(f"{name} cannot be filtered on: the server does not store it as such.")
            raise invalid_filter(f"Unknown attribute {name}.")
        entry = self.attributes.get(attr_path.attr.lower())
        if entry is None:
            if attr_path.attr.lower() in self.unstored:
                raise invalid_filter(f"{name} cannot be filtered on: the server does not store it.")
            raise invalid_filter(f"Unknown attribute {name}.")
        return entry, attr_path.sub_attr.lower() if attr_path.sub_attr else None, name

    def _declared(self, attr_path: AttrPath) -> bool:
        if attr_path.uri is not None and attr_path.uri.lower() != self.core_urn:
            return False
        return attr_path.attr.lower() in self.attributes

    def visit_present(self, node: Present) -> Q:
        entry, sub, name = self._lookup(node.attr_path)
        return self._present(entry, sub, name)

    def visit_comparison(self, node: Comparison) -> Q:
        entry, sub, name = self._lookup(node.attr_path)
        if isinstance(entry, Column):
            if sub is not None:
                raise invalid_filter(f"{name}: {node.attr_path.attr} has no sub-attributes.")
            return column_comparison(entry, node.op, node.value, name)
        if isinstance(entry, dict):  # meta
            target = entry.get(sub) if sub else None
            if target is None:
                raise invalid_filter(f"{name} cannot be filtered on.")
            if isinstance(target, Constant):
                return EVERYTHING if _compare_constant(target, node.op, node.value) else NOTHING
            return column_comparison(target, node.op, node.value, name)
        # A comparison on a multi-valued attribute compares its `value` (RFC 7644 §3.4.2.2); any
        # value matching is a match, except for `ne`, which holds when no value is equal.
        sub = sub or "value"
        if node.op == CompareOperator.ne:
            return ~self._any(entry, Comparison(AttrPath(sub), CompareOperator.eq, node.value), name)
        return self._any(entry, Comparison(AttrPath(sub), node.op, node.value), name)

    def visit_value_path(self, node: ValuePath) -> Q:
        entry, sub, name = self._lookup(node.attr_path)
        if not isinstance(entry, (Relation, Embedded)):
            raise invalid_filter(f"{name} is not multi-valued: [filters] apply to multi-valued attributes.")
        return self._any(entry, node.val_filter, name)

    def _present(self, entry, sub, name) -> Q:
        if isinstance(entry, Column):
            return column_present(entry, name)
        if isinstance(entry, dict):
            target = entry.get(sub) if sub else Constant(True)
            if target is None:
                raise invalid_filter(f"{name} cannot be filtered on.")
            return EVERYTHING if isinstance(target, Constant) else column_present(target, name)
        return self._any(entry, Present(AttrPath(sub)) if sub else None, name)

    def _any(self, entry, item_filter, name) -> Q:
        """Some value of the multi-valued attribute satisfies `item_filter` (any value, if None)."""
        items = _ItemBuilder(entry.items, name)
        inner = items.visit(item_filter) if item_filter is not None else EVERYTHING
        if isinstance(entry, Embedded):
            return entry.present & inner
        rows = AccountGroup.objects.filter(**{entry.outer: OuterRef("pk")}).filter(inner)
        return Q(Exists(rows))


class _ItemBuilder(_QVisitor):
    """The filter inside [brackets], over the sub-attributes of one value."""

    def __init__(self, items: dict, parent: str):
        self.items = items
        self.parent = parent

    def _lookup(self, attr_path: AttrPath):
        name = f"{self.parent}.{attr_path.attr}"
        if attr_path.uri is not None or attr_path.sub_attr is not None:
            raise invalid_filter(f"{self.parent}[…] names sub-attributes of {self.parent} only, not {attr_path}.")
        target = self.items.get(attr_path.attr.lower())
        if target is None:
            raise invalid_filter(f"{name} cannot be filtered on.")
        return target, name

    def visit_present(self, node: Present) -> Q:
        target, name = self._lookup(node.attr_path)
        return EVERYTHING if isinstance(target, Constant) else column_present(target, name)

    def visit_comparison(self, node: Comparison) -> Q:
        target, name = self._lookup(node.attr_path)
        if isinstance(target, Constant):
            return EVERYTHING if _compare_constant(target, node.op, node.value) else NOTHING
        return column_comparison(target, node.op, node.value, name)

    def visit_value_path(self, node: ValuePath) -> Q:
        raise invalid_filter("Value selections do not nest.")
