"""Request bodies and PATCH operations (RFC 7644 §3.3, §3.5) applied to a resource's attributes.

A resource is held as a small document (its stored attributes by their SCIM names); POST and PUT
bodies are read into a blank one, PATCH operations are applied one by one to the current one,
and only then is the result checked and written through the services, so a request that fails
half-way writes nothing.

What identity providers really send, beyond the RFC, is accepted (DESIGN §7):
- op names in any case (`Replace`, `Add`, `Remove`) and booleans as strings (`"False"`);
- a path-less operation whose value object is keyed by attribute paths, not only by names
  (`{"name.givenName": …, "emails[type eq \\"work\\"].value": …}`), or by an extension's URN;
- `members` removed by a value list (`{"op":"Remove","path":"members","value":[{"value":"…"}]}`)
  as well as by `members[value eq "…"]`; `$ref: null` in members;
- `emails[type eq "work"].value` set when the account has no work address yet (the value is added);
- removing a member or a value that is not there is not an error (the IdP's view may lag ours).
"""
from dataclasses import dataclass, field

from scim2_models import Path
from scim2_models.path import (AttrPath, CompareOperator, Comparison, LogicalExpr, LogicalOperator, Not, Present,
                               ValuePath)

from .errors import bad_request, invalid_path
from .schemas import (AI_GOVERNANCE_BY_NAME, AI_GOVERNANCE_URN, GROUP_BY_NAME, GROUP_URN, IGNORED_EXTENSIONS,
                      IGNORED_USER_ATTRIBUTES, USER_BY_NAME, USER_URN)

OPS = ("add", "replace", "remove")
READ_ONLY = frozenset({"id", "meta", "groups"})


def _text(value, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string, not {type(value).__name__}.")
    if "\x00" in value:
        raise bad_request(f"{name} cannot hold a NUL character.")
    return value


def as_bool(value, name: str) -> bool:
    """A boolean; Entra sends "True" and "False" as strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise bad_request(f"{name} must be a boolean, not {value!r}.")


def _identifier(value, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value, name)


# The sub-attributes each multi-valued attribute accepts on the way in, and how each is read.
ITEM_FIELDS = {
    "emails": {"value": _text, "type": _text, "primary": as_bool, "display": _text},
    "members": {"value": _identifier, "$ref": _text, "type": _text, "display": _text},
}
CASE_EXACT_ITEM_FIELDS = frozenset({("members", "value"), ("members", "$ref")})


@dataclass(frozen=True)
class Kind:
    """A resource type as the document engine sees it."""

    name: str
    core_urn: str
    by_name: dict
    ignored: frozenset
    extensions: dict  # URN (lower case) -> its attributes by lower-cased name
    blank: dict

    def resolve(self, attr_path: AttrPath) -> tuple[str, str | None, str | None]:
        """(what, canonical name, sub-attribute) for a path: what is attr, ext, extension, ignored or readonly."""
        uri = attr_path.uri.lower() if attr_path.uri else None
        written = str(attr_path)
        if uri is not None and attr_path.sub_attr is None:
            bare = f"{uri}:{attr_path.attr}".lower()  # a path that is only an extension's URN
            if bare in self.extensions:
                return "extension", bare, None
            if bare in IGNORED_EXTENSIONS and self.name == "User":
                return "ignored", None, None
        if uri is None or uri == self.core_urn.lower():
            attr = attr_path.attr.lower()
            if attr == "schemas":
                return "ignored", None, None
            if attr in READ_ONLY:
                return "readonly", attr, None
            spec = self.by_name.get(attr)
            if spec is None:
                if attr in self.ignored:
                    return "ignored", None, None
                raise invalid_path(f"Unknown attribute '{written}' for a {self.name}.")
            return "attr", spec["name"], attr_path.sub_attr
        if uri in self.extensions:
            spec = self.extensions[uri].get(attr_path.attr.lower())
            if spec is None or attr_path.sub_attr is not None:
                raise invalid_path(f"Unknown attribute '{written}'.")
            return "ext", spec["name"], None
        if uri in IGNORED_EXTENSIONS and self.name == "User":
            return "ignored", None, None
        raise invalid_path(f"Unknown schema in '{written}'.")


USER = Kind("User", USER_URN, USER_BY_NAME, IGNORED_USER_ATTRIBUTES,
            {AI_GOVERNANCE_URN.lower(): AI_GOVERNANCE_BY_NAME},
            {"userName": None, "displayName": None, "externalId": None, "active": None, "emails": []})
GROUP = Kind("Group", GROUP_URN, GROUP_BY_NAME, frozenset(), {},
             {"displayName": None, "externalId": None, "members": []})


def parse_path(raw):
    if not isinstance(raw, str):
        raise invalid_path("path must be a string.")
    try:
        node = Path(raw).ast
    except Exception as error:  # the parser's exceptions, or ValueError from its builder
        raise invalid_path(f"Invalid path '{raw}': {error}") from None
    if node is None:
        raise invalid_path("An attribute name or path cannot be empty.")
    return node


@dataclass
class Document:
    """A resource's attributes while a request is applied to them."""

    kind: Kind
    values: dict
    resource_id: str | None = None
    extension: dict = field(default_factory=dict)  # the extension's attributes: True, False or None

    @classmethod
    def blank(cls, kind: Kind, resource_id: str | None = None) -> "Document":
        extension = {spec["name"]: None for attributes in kind.extensions.values() for spec in attributes.values()}
        return cls(kind, {k: (list(v) if isinstance(v, list) else v) for k, v in kind.blank.items()}, resource_id,
                   extension)

    @classmethod
    def from_body(cls, kind: Kind, body, resource_id: str | None = None) -> "Document":
        """A full representation (POST, PUT): every attribute it does not carry is unassigned."""
        if not isinstance(body, dict):
            raise bad_request("The body must be a JSON object.", "invalidSyntax")
        document = cls.blank(kind, resource_id)
        schemas = body.get("schemas")
        if schemas is not None and not (isinstance(schemas, list) and all(isinstance(s, str) for s in schemas)):
            raise bad_request("schemas must be a list of URNs.", "invalidSyntax")
        for key, value in body.items():
            lowered = key.lower() if isinstance(key, str) else key
            if lowered in ("schemas", "meta", "groups") or (lowered == "id" and resource_id is None):
                continue  # read-only, and sent back by some clients: ignored in a full representation
            document._apply_key("replace", key, value)
        return document

    # --- PATCH -------------------------------------------------------------------------------------

    def patch(self, body) -> None:
        if not isinstance(body, dict):
            raise bad_request("The body must be a JSON object.", "invalidSyntax")
        operations = next((v for k, v in body.items() if isinstance(k, str) and k.lower() == "operations"), None)
        if not isinstance(operations, list) or not operations:
            raise bad_request("A PatchOp carries a non-empty 'Operations' list.", "invalidSyntax")
        for operation in operations:
            if not isinstance(operation, dict):
                raise bad_request("Each operation must be an object.", "invalidSyntax")
            fields = {k.lower(): v for k, v in operation.items() if isinstance(k, str)}
            op = fields.get("op")
            if not isinstance(op, str) or op.lower() not in OPS:
                raise bad_request(f"op must be add, remove or replace, not {op!r}.", "invalidSyntax")
            self.apply(op.lower(), fields.get("path"), fields.get("value"), has_value="value" in fields)

    def apply(self, op: str, path, value, *, has_value: bool = True) -> None:
        if path is None or path == "":
            if op == "remove":
                raise bad_request("remove needs a path.", "noTarget")
            if not isinstance(value, dict):
                raise bad_request("An operation without a path carries an object of attributes.")
            for key, item in value.items():
                self._apply_key(op, key, item)
            return
        if op != "remove" and not has_value:
            raise bad_request(f"{op} needs a value.")
        self._apply_node(op, parse_path(path), value if has_value else None)

    def _apply_key(self, op: str, key, value) -> None:
        if not isinstance(key, str):
            raise bad_request("Attribute names are strings.")
        lowered = key.lower()
        if lowered in ("schemas", "meta"):
            return
        if lowered == "id":
            if self.resource_id is not None and str(value) == self.resource_id:
                return  # Okta sends the id back in path-less replaces
            raise bad_request("id is read-only.", "mutability")
        self._apply_node(op, parse_path(key), value)

    def _apply_node(self, op: str, node, value) -> None:
        selection = None
        if isinstance(node, (Comparison, Present)):  # errata 7122's `emails.type eq "work"` as a path
            attr = node.attr_path
            if attr.sub_attr is None:
                raise invalid_path(f"'{node}' does not select values of a multi-valued attribute.")
            inner = AttrPath(attr.sub_attr)
            selection = (Comparison(inner, node.op, node.value) if isinstance(node, Comparison)
                         else Present(inner))
            node = ValuePath(AttrPath(attr.attr, None, attr.uri), selection)
        if isinstance(node, ValuePath):
            what, name, _ = self.kind.resolve(node.attr_path)
            selection, sub = node.val_filter, node.sub_attr
        else:
            what, name, sub = self.kind.resolve(node)
        if what == "ignored":
            return
        if what == "readonly":
            raise bad_request(f"{name} is read-only.", "mutability")
        if what == "extension":
            attributes = self.kind.extensions[name]
            if op == "remove":
                for spec in attributes.values():
                    self.extension[spec["name"]] = None
                return
            if not isinstance(value, dict):
                raise bad_request(f"{name} carries an object of its attributes.")
            for key, item in value.items():
                if isinstance(key, str) and key.lower() == "schemas":
                    continue
                spec = attributes.get(key.lower()) if isinstance(key, str) else None
                if spec is None:
                    raise invalid_path(f"Unknown attribute '{key}' of {name}.")
                self._set_extension(op, spec, item)
            return
        if what == "ext":
            if selection is not None:
                raise invalid_path(f"{name} is not multi-valued.")
            self._set_extension(op, self.kind.extensions[AI_GOVERNANCE_URN.lower()][name.lower()], value)
            return
        spec = self.kind.by_name[name.lower()]
        if spec["type"] == "complex" and spec["multiValued"]:
            self._multi(op, name, selection, sub.lower() if sub else None, value)
            return
        if selection is not None or sub is not None:
            raise invalid_path(f"{name} has no sub-attributes and is not multi-valued.")
        if op == "remove":
            if spec["required"]:
                raise bad_request(f"{name} is required and cannot be removed.")
            self.values[name] = None
            return
        self.values[name] = as_bool(value, name) if spec["type"] == "boolean" else _text(value, name)

    def _set_extension(self, op: str, spec: dict, value) -> None:
        self.extension[spec["name"]] = None if op == "remove" or value is None else as_bool(value, spec["name"])

    # --- multi-valued attributes (emails, members) -------------------------------------------------

    def _item(self, name: str, value) -> dict:
        if not isinstance(value, dict):
            raise bad_request(f"Each value of {name} is an object, such as {{\"value\": \"…\"}}.")
        readers = ITEM_FIELDS[name]
        item = {}
        for key, raw in value.items():
            sub = key.lower() if isinstance(key, str) else None
            if sub not in readers:
                raise bad_request(f"{name} has no sub-attribute '{key}'.", "invalidValue")
            item[sub] = readers[sub](raw, f"{name}.{key}")
        if name == "members" and item.get("type") is not None and item["type"].lower() != "user":
            raise bad_request(f"Only users can be members: groups do not nest ({item['type']!r}).")
        return item

    def _items(self, name: str, value) -> list[dict]:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise bad_request(f"{name} is a list of objects.")
        return [self._item(name, each) for each in value]

    def _key(self, name: str, value):
        """What two equal values share (members compare exactly, emails without regard to case); None
        for a missing value, which equals nothing."""
        if value is None:
            return None
        return value if (name, "value") in CASE_EXACT_ITEM_FIELDS else value.lower()

    def _multi(self, op: str, name: str, selection, sub: str | None, value) -> None:
        items: list[dict] = self.values[name]
        if sub is not None and sub not in ITEM_FIELDS[name]:
            raise invalid_path(f"{name} has no sub-attribute '{sub}'.")
        if selection is None and sub is None:
            if op == "remove":
                if value is None:
                    items = []
                else:  # Entra: remove members by a list of values
                    gone = {self._key(name, each.get("value")) for each in self._items(name, value)} - {None}
                    items = [i for i in items if self._key(name, i.get("value")) not in gone]
            elif op == "add":
                present = {self._key(name, i.get("value")) for i in items}
                for new in self._items(name, value):
                    key = self._key(name, new.get("value"))
                    if key is None or key not in present:
                        items.append(new)
                        present.add(key)
            else:
                items = self._items(name, value)
        elif selection is None:  # emails.value: every value's sub-attribute
            if op == "remove":
                for item in items:
                    item.pop(sub, None)
            else:
                read = ITEM_FIELDS[name][sub](value, f"{name}.{sub}")
                for item in items:
                    item[sub] = read
                if not items:
                    items.append({sub: read})
        else:
            matched = [item for item in items if _matches(selection, item, name)]
            if op == "remove":
                if sub is None:
                    gone = {id(m) for m in matched}
                    items = [i for i in items if id(i) not in gone]
                else:
                    for item in matched:
                        item.pop(sub, None)
            else:
                new = ({sub: ITEM_FIELDS[name][sub](value, f"{name}.{sub}")} if sub is not None
                       else self._item(name, value))
                for item in matched:
                    item.update(new)
                if not matched:
                    if name != "emails":
                        raise bad_request(f"No value of {name} matches the path's filter.", "noTarget")
                    items.append({**_equalities(selection), **new})
        self.values[name] = [item for item in items if item.get("value") not in (None, "")]


def _matches(node, item: dict, name: str) -> bool:
    """Whether one value of a multi-valued attribute satisfies the filter in [brackets]."""
    if isinstance(node, LogicalExpr):
        results = (_matches(term, item, name) for term in node.terms)
        return all(results) if node.op == LogicalOperator.and_ else any(results)
    if isinstance(node, Not):
        return not _matches(node.expr, item, name)
    if isinstance(node, (Comparison, Present)):
        attr = node.attr_path
        sub = attr.attr.lower()
        if attr.uri is not None or attr.sub_attr is not None or sub not in ITEM_FIELDS[name]:
            raise bad_request(f"{name}[…] filters on sub-attributes of {name}, not '{attr}'.", "invalidFilter")
        actual = item.get(sub)
        if isinstance(node, Present):
            return actual not in (None, "")
        return _compare(actual, node.op, node.value, (name, sub) in CASE_EXACT_ITEM_FIELDS)
    raise bad_request("Value selections do not nest.", "invalidFilter")


def _compare(actual, op: CompareOperator, expected, case_exact: bool) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        if isinstance(expected, str) and expected.lower() in ("true", "false"):
            expected = expected.lower() == "true"
        if op == CompareOperator.eq:
            return actual == expected
        if op == CompareOperator.ne:
            return actual != expected
        raise bad_request(f"'{op.value}' does not compare booleans.", "invalidFilter")
    if actual is None or expected is None:
        equal = actual is None and expected is None
        return equal if op == CompareOperator.eq else (not equal if op == CompareOperator.ne else False)
    actual, expected = str(actual), str(expected)
    if not case_exact:
        actual, expected = actual.lower(), expected.lower()
    return {"eq": actual == expected, "ne": actual != expected, "co": expected in actual,
            "sw": actual.startswith(expected), "ew": actual.endswith(expected), "gt": actual > expected,
            "ge": actual >= expected, "lt": actual < expected, "le": actual <= expected}[op.value]


def _equalities(node) -> dict:
    """The `sub eq "x"` terms of a selection: what a value added through it must hold."""
    terms = node.terms if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_ else (node,)
    return {term.attr_path.attr.lower(): term.value for term in terms
            if isinstance(term, Comparison) and term.op == CompareOperator.eq and term.attr_path.sub_attr is None
            and term.attr_path.attr.lower() in ITEM_FIELDS["emails"] and not isinstance(term.value, (dict, list))}

