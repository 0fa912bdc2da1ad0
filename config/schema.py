"""OpenAPI post-processing: every operation documents the problem+json errors it can answer."""

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details; `errors` names each offending field.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object",
            "properties": {"field": {"type": ["string", "null"]}, "detail": {"type": "string"}},
        }},
    },
    "required": ["type", "title", "status"],
}
ERRORS = {
    "400": "Invalid input: each offending field is named.",
    "401": "Missing, unknown or revoked token.",
    "403": "Your role in the organization does not allow this.",
    "404": "No such object in your organization.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "411": "A body sent chunked, without a Content-Length.",
    "413": "Request body too large.",
    "415": "Unsupported media type.",
    "429": "Too many requests: retry after the Retry-After header's seconds.",
}


def add_problem_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    reference = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in ERRORS.items():
                operation["responses"].setdefault(status, {"description": description, "content": reference})
    return result
