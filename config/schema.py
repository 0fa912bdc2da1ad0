"""The OpenAPI schema says what the API enforces: every operation's problem+json errors, request
bodies that refuse unknown keys, ids as bounded integers, and the limits of lists and filters.
So clients generated from it, and fuzzers such as schemathesis, agree with the server."""
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.drainage import has_override
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from .api import MAX_ID, StrictSerializer
from .filters import IntegerFilter, strict_filter


LISTS = (serializers.ListSerializer, serializers.ListField, serializers.ManyRelatedField)


class AutoSchema(SpectacularAutoSchema):
    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if not vars(type(serializer)).get("__doc__") and not has_override(serializer, "description"):
            schema.pop("description", None)  # spectacular would show a base class's docstring instead
        if direction == "request":  # every request body of the API refuses keys it does not take
            schema["additionalProperties"] = False
            for name, property_schema in schema["properties"].items():
                _refuse_nul(serializer.fields[name], property_schema)
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if schema is None or field.read_only or not isinstance(field, LISTS):
            return schema
        # spectacular reads a list's limits from validators; a nested serializer's, and allow_empty, are attributes
        if direction == "request" and isinstance(field.parent, StrictSerializer):
            schema["uniqueItems"] = True  # repeated items are refused
        if getattr(field, "max_length", None) is not None:
            schema.setdefault("maxItems", field.max_length)
        if getattr(field, "min_length", None) is not None:
            schema.setdefault("minItems", field.min_length)
        elif not field.allow_empty:
            schema.setdefault("minItems", 1)
        return schema


# PostgreSQL's text columns cannot hold U+0000, so no string the API takes may contain it.
NO_NUL = "^[^\\u0000]*$"


def _refuse_nul(field, schema: dict) -> None:
    if isinstance(field, serializers.ListField):
        _refuse_nul(field.child, schema.get("items", {}))
    elif (isinstance(field, (serializers.CharField, serializers.RelatedField)) and schema.get("type") == "string"
          and not {"pattern", "format", "enum"} & set(schema)):
        schema["pattern"] = NO_NUL


class ReferenceFieldExtension(OpenApiSerializerFieldExtension):
    """An id is a bounded integer; any other reference (a user_name, a catalog key) a string."""

    target_class = "config.api.ReferenceField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        if field.slug_field == "pk":
            return {"type": "integer", "minimum": 1, "maximum": MAX_ID}
        length = field.model._meta.get_field(field.slug_field).max_length
        return {"type": "string", "minLength": 1, **({"maxLength": length} if length else {})}


class StrictFilterExtension(DjangoFilterExtension):
    """Documents each filter as config.filters.StrictFilterBackend parses it."""

    target_class = "config.filters.StrictFilterBackend"
    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        filter_field = strict_filter(filter_field, model)
        parameters = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
        for parameter in parameters:
            if isinstance(filter_field, IntegerFilter):
                parameter["schema"] = filter_field.schema()
            elif parameter["schema"].get("type") == "string":
                parameter["schema"]["minLength"] = 1  # an empty value is refused (config.api.OrgAPIMixin)
                if not {"pattern", "format", "enum"} & set(parameter["schema"]):
                    parameter["schema"]["pattern"] = NO_NUL
        return parameters


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
    "409": "Conflict: a value another object of the organization holds (a user_name, a version label...).",
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
