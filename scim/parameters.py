"""The parameters of a list or a search (RFC 7644 §3.4.2–3.4.3): filter, startIndex and count,
attributes and excludedAttributes, by query string or SearchRequest body; and the ListResponse
envelope they shape."""
from .errors import bad_request
from .schemas import AI_GOVERNANCE_URN, DEFAULT_COUNT, LIST_RESPONSE_URN, MAX_RESULTS

MAX_START_INDEX = 2**31  # past any table: an empty page, not an overflow
ALWAYS_RETURNED = frozenset({"id", "schemas"})


def search_params(body) -> dict:
    """A SearchRequest body (RFC 7644 §3.4.3) as parameters by lower-cased name, as a query's are read."""
    if not isinstance(body, dict):
        raise bad_request("A SearchRequest is a JSON object.", "invalidSyntax")
    params = {key.lower(): value for key, value in body.items() if isinstance(key, str)}
    params.pop("schemas", None)
    return params


def filter_expression(params: dict) -> str | None:
    """The `filter` of a list or a search, None when not given; an empty or non-text one is refused."""
    expression = params.get("filter")
    if expression is not None and (not isinstance(expression, str) or not expression.strip()):
        raise bad_request("filter must be a non-empty string.", "invalidFilter")
    return expression


def _integer(value, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise bad_request(f"{name} must be an integer.")
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"{name} must be an integer, not {value!r}.") from None


def paging(params: dict) -> tuple[int, int]:
    """(startIndex, count): startIndex below 1 reads as 1 and count is capped (RFC 7644 §3.4.2.4)."""
    start_index = min(max(_integer(params.get("startindex"), "startIndex", 1), 1), MAX_START_INDEX)
    count = min(max(_integer(params.get("count"), "count", DEFAULT_COUNT), 0), MAX_RESULTS)
    return start_index, count


def _attribute_param(value, name: str):
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise bad_request(f"{name} is a list of attribute names.")
        return ",".join(value)
    return value


def projection(params: dict, core_urn: str):
    """The `attributes` and `excludedAttributes` of a request (query or SearchRequest)."""
    attributes = parse_attribute_list(_attribute_param(params.get("attributes"), "attributes"), core_urn)
    excluded = parse_attribute_list(_attribute_param(params.get("excludedattributes"), "excludedAttributes"),
                                    core_urn)
    if attributes and excluded:
        raise bad_request("attributes and excludedAttributes exclude each other.", "invalidSyntax")
    return attributes, excluded


def list_body(resources: list[dict], start_index: int = 1, total: int | None = None) -> dict:
    return {"schemas": [LIST_RESPONSE_URN], "totalResults": len(resources) if total is None else total,
            "startIndex": start_index, "itemsPerPage": len(resources), "Resources": resources}


def parse_attribute_list(raw: str | None, core_urn: str) -> dict[str, set[str] | None] | None:
    """'userName,emails.value' -> {"username": None, "emails": {"value"}}; None when not given.

    Names are case-insensitive and may carry the core schema's URN; the AI-governance extension is
    named by its URN, or its attributes by URN:attribute. Other URNs select nothing.
    """
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > 2000:
        raise bad_request("attributes and excludedAttributes are comma-separated attribute names.")
    selected: dict[str, set[str] | None] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        lowered = item.lower()
        prefix = core_urn.lower() + ":"
        ai_governance = AI_GOVERNANCE_URN.lower()
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix):]
        elif lowered == ai_governance:
            selected[ai_governance] = None
            continue
        elif lowered.startswith(ai_governance + ":"):
            attr, sub = ai_governance, lowered[len(ai_governance) + 1:]
            if selected.get(attr, set()) is not None:
                selected[attr] = selected.get(attr, set()) | {sub}
            continue
        elif lowered.startswith("urn:"):
            continue
        attr, _, sub = lowered.partition(".")
        if sub:
            current = selected.get(attr, set())
            if current is not None:
                current.add(sub)
                selected[attr] = current
        else:
            selected[attr] = None
    return selected


def _sub_attributes(value, subs: set[str], *, keep: bool):
    """The value with only (keep) or without (not keep) these sub-attributes; items left empty are dropped."""
    if isinstance(value, list):
        kept = [_sub_attributes(item, subs, keep=keep) for item in value]
        return [item for item in kept if item]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if (k.lower() in subs) == keep}
    return value


def project(resource: dict, attributes, excluded) -> dict:
    if attributes:
        out = {}
        for key, value in resource.items():
            lowered = key.lower()
            if lowered in ALWAYS_RETURNED:
                out[key] = value
            elif lowered in attributes:
                subs = attributes[lowered]
                kept = value if subs is None else _sub_attributes(value, subs, keep=True)
                if kept not in (None, [], {}):
                    out[key] = kept
        return out
    if excluded:
        out = {}
        for key, value in resource.items():
            lowered = key.lower()
            if lowered in ALWAYS_RETURNED or lowered not in excluded:
                out[key] = value
            elif excluded[lowered] is not None:
                kept = _sub_attributes(value, excluded[lowered], keep=False)
                if kept not in (None, [], {}):
                    out[key] = kept
        return out
    return resource
