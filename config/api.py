"""The one error format, the one pagination class and the serializer base every API uses."""
import base64
import gc
import re
from contextlib import contextmanager
from http import HTTPStatus
from urllib import parse

import orjson
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxLengthValidator
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.relations import MANY_RELATION_KWARGS
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"

# The limits a client must respect where a field declares none smaller (README, "Input and limits").
MAX_ID = 2**63 - 1          # ids are PostgreSQL bigints
MAX_LIST_ITEMS = 1_000      # items in any list of a request body
MAX_TEXT_LENGTH = 10_000    # characters in a free-text string (a rule's reason)
MAX_EMAIL_LENGTH = 254      # RFC 5321's limit on an address
MAX_PAGE_SIZE = 1_000


def _flatten(detail, prefix=""):
    """DRF's nested error detail -> [{"field": "flows[3].purpose", "detail": "..."}]."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            out.extend(_flatten(value, path))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [{"field": prefix or None, "detail": str(item)} for item in detail]
        out = []
        for index, item in enumerate(detail):
            if item:
                out.extend(_flatten(item, f"{prefix}[{index}]"))
        return out
    return [{"field": prefix or None, "detail": str(detail)}]


def _flatten_codes(codes):
    if isinstance(codes, dict):
        codes = list(codes.values())
    if isinstance(codes, list):
        return [code for item in codes for code in _flatten_codes(item)]
    return [codes]


def problem(status_code: int, title: str, detail: str = "", errors=None, **extra) -> dict:
    body = {"type": "about:blank", "title": title, "status": status_code}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def problem_exception_handler(exc, context):
    """Every API error as RFC 9457 problem+json; validation errors name their fields."""
    if isinstance(exc, DjangoValidationError):  # raised by services, which know no DRF
        exc = exceptions.ValidationError(serializers.as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        named = [e["field"] for e in errors if e["field"]]
        detail = "Invalid input" + (f" in: {', '.join(dict.fromkeys(named))}." if named else ".")
        if not named and errors:
            detail = errors[0]["detail"]
        title = "Validation failed"
        if set(_flatten_codes(exc.get_codes())) == {"unique"}:  # valid input, taken by another object
            response.status_code, title = status.HTTP_409_CONFLICT, "Conflict"
        body = problem(response.status_code, title, detail, errors)
    else:
        title = str(getattr(exc, "default_detail", None) or "Error")
        if "{" in title:  # a template such as 'Method "{method}" not allowed.': its detail is the filled-in one
            title = HTTPStatus(response.status_code).phrase
        body = problem(response.status_code, title, str(getattr(exc, "detail", "")) or "")
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_response(status_code: int, title: str, detail: str = "") -> JsonResponse:
    return JsonResponse(problem(status_code, title, detail), status=status_code, content_type=PROBLEM_CONTENT_TYPE)


@csrf_exempt  # the answer is a 404 for every method, with or without a session
def api_not_found(request, exception=None):
    return problem_response(status.HTTP_404_NOT_FOUND, "Not found", f"No resource at {request.path}.")


def api_server_error(request):
    return problem_response(status.HTTP_500_INTERNAL_SERVER_ERROR, "Server error",
                            "The error was logged; nothing was changed by this request.")


class CursorPagination(pagination.CursorPagination):
    """Cursor pages. A `cursor` or `page_size` that is not one this API gave or documents is a 400
    naming it: a client is told, rather than silently given the first page or another size."""

    page_size = 100
    max_page_size = MAX_PAGE_SIZE
    page_size_query_param = "page_size"
    ordering = "-id"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not re.fullmatch(r"[0-9]{1,7}", raw) or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Must be an integer from 1 to {self.max_page_size}."]})
        return int(raw)

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model  # decode_cursor checks the cursor's position against its ordering field
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        invalid = exceptions.ValidationError(
            {self.cursor_query_param: ["Invalid cursor: use a next or previous link as given."]})
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is not None:  # DRF's own decoding skips what is not base64, and unknown keys
            try:
                tokens = parse.parse_qs(base64.b64decode(encoded, validate=True).decode("ascii"),
                                        keep_blank_values=True, strict_parsing=True)
            except ValueError:
                raise invalid from None
            if not tokens or tokens.keys() - {"o", "r", "p"} or any(len(v) > 1 for v in tokens.values()):
                raise invalid
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise invalid from None
        if cursor is not None and cursor.position is not None:
            name = self.ordering[0].lstrip("-")
            field = self.model._meta.pk if name == "pk" else self.model._meta.get_field(name)
            try:
                position = field.to_python(cursor.position)
            except DjangoValidationError:
                raise invalid from None
            if isinstance(position, int) and not -MAX_ID - 1 <= position <= MAX_ID:
                raise invalid
        return cursor

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            elif parameter["name"] == self.cursor_query_param:
                parameter["schema"]["minLength"] = 1
        return parameters


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                        r"([Zz]|[+-][0-9]{2}:[0-9]{2})?")


INSTANT_ERROR = "Must be an RFC 3339 date-time such as 2026-01-31T09:30:00Z (UTC when it has no offset)."


def is_instant(value) -> bool:
    """An RFC 3339 date-time (`format: date-time`); one without an offset is read as UTC."""
    return isinstance(value, str) and _DATE_TIME.fullmatch(value) is not None


def max_items(field) -> int | None:
    """The most items a list field takes, if it says."""
    limits = [v.limit_value for v in field.validators if isinstance(v, MaxLengthValidator)]
    if getattr(field, "max_length", None) is not None:
        limits.append(field.max_length)
    return min(limits, default=None)


def limit_input(field, model_field=None) -> None:
    """Give a writable field the limits a client must respect where it declares none: the model
    column's length, or the API's defaults. As validators, so the OpenAPI schema states them too.
    Strings are kept as sent, not trimmed, so the schema's lengths are the ones checked."""
    if field.read_only:
        return
    if isinstance(field, (serializers.ListSerializer, serializers.ManyRelatedField, serializers.ListField)):
        child = getattr(field, "child", None)
        if max_items(field) is None:  # items are distinct, so a list of choices holds each at most once
            field.max_length = len(child.choices) if isinstance(child, serializers.ChoiceField) else MAX_LIST_ITEMS
            field.validators.append(MaxLengthValidator(field.max_length,
                                                       message=f"Must have at most {field.max_length} items."))
        if isinstance(field, serializers.ListField):
            limit_input(child)
    elif isinstance(field, serializers.CharField):
        field.trim_whitespace = False  # kept as sent: the schema's lengths count what was sent
        if max_items(field) is None:
            field.max_length = getattr(model_field, "max_length", None) or (
                MAX_EMAIL_LENGTH if isinstance(field, serializers.EmailField) else MAX_TEXT_LENGTH)
            field.validators.append(MaxLengthValidator(
                field.max_length, message=f"Must have at most {field.max_length} characters."))


def _scalar_error(field, value) -> str | None:
    """What is wrong with a JSON scalar as input to `field`, before DRF would coerce it."""
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be true or false."
    if isinstance(field, serializers.IntegerField):
        if type(value) is not int:
            return "Must be an integer."
        return None if -MAX_ID - 1 <= value <= MAX_ID else "Out of range."
    if isinstance(field, (serializers.FloatField, serializers.DecimalField)):
        return None if type(value) in (int, float) else "Must be a number."
    if isinstance(field, serializers.RelatedField):
        if getattr(field, "slug_field", "pk") == "pk":
            is_id = type(value) is int and 1 <= value <= MAX_ID
            return None if is_id else f"Must be an id: an integer from 1 to {MAX_ID}."
        if not isinstance(value, str) or not value:
            return "Must be a non-empty string."
        return "Must not contain NUL characters." if "\x00" in value else None
    if isinstance(field, serializers.DateTimeField):
        return None if is_instant(value) else INSTANT_ERROR
    if isinstance(field, serializers.DateField):
        return None if isinstance(value, str) and _DATE.fullmatch(value) else "Must be a date such as 2026-01-31."
    if isinstance(field, (serializers.CharField, serializers.ChoiceField)) and not isinstance(
            field, serializers.MultipleChoiceField):
        return None if isinstance(value, str) else "Must be a string."
    return None  # free-form values (JSON objects) and nested serializers check themselves


def _repeated(items: list) -> str | None:
    seen = {}
    for index, item in enumerate(items):
        key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS) if isinstance(item, (dict, list)) else (type(item), item)
        if key in seen:
            return f"Item {index} repeats item {seen[key]} ({orjson.dumps(item).decode()})."
        seen[key] = index
    return None


def input_errors(field, value, path: str) -> dict:
    """Errors in `value` as JSON input to `field`, by path (`groups[3]`): the wrong JSON type, a list
    past its limit or with a repeated item. DRF alone would store "false" as False, 14.5 as 14."""
    if value is None:  # whether null is allowed is the field's to say
        return {}
    if isinstance(field, (serializers.ListSerializer, serializers.ManyRelatedField, serializers.ListField)):
        if not isinstance(value, list):
            return {path: ["Must be a list."]}
        limit = max_items(field)
        if limit is not None and len(value) > limit:
            return {path: [f"Must have at most {limit} items; it has {len(value)}."]}
        child = field.child_relation if isinstance(field, serializers.ManyRelatedField) else (
            field.child if isinstance(field, serializers.ListField) else None)
        errors = {}
        for index, item in enumerate(value if child is not None else ()):
            errors.update(input_errors(child, item, f"{path}[{index}]"))
        if not errors and (repeated := _repeated(value)):
            errors[path] = [repeated]
        return errors
    message = _scalar_error(field, value)
    return {path: [message]} if message else {}


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not take (unknown or read-only), values of another JSON type than the
    field's, and repeated list items; every string and list has a limit. So a typo or a client's
    loose typing is a 400 naming the field, never something silently different from what was sent."""

    def get_fields(self):
        fields = super().get_fields()
        model = getattr(getattr(self, "Meta", None), "model", None)
        for name, field in fields.items():
            limit_input(field, _model_field(model, field.source or name))
        return fields

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for key, value in data.items():
                field = self.fields.get(key)
                if field is None or field.read_only:
                    errors[key] = ["Unknown field." if field is None else "Read-only field."]
                else:
                    errors.update(input_errors(field, value, key))
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def _model_field(model, name):
    try:
        return model._meta.get_field(name) if model is not None and name != "*" else None
    except FieldDoesNotExist:
        return None


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    pass


class ReferenceField(serializers.SlugRelatedField):
    """A reference to an object by its id (`slug_field="pk"`) or another unique field, looked up in
    `get_queryset()`. With many=True, the whole list is looked up in one query."""

    def __init__(self, model, slug_field="pk", **kwargs):
        self.model = model
        super().__init__(slug_field=slug_field, **kwargs)

    def get_queryset(self):
        raise NotImplementedError

    @classmethod
    def many_init(cls, *args, **kwargs):
        shared = {key: value for key, value in kwargs.items() if key in MANY_RELATION_KWARGS}
        return ManyReferenceField(child_relation=cls(*args, **kwargs), **shared)


class ManyReferenceField(serializers.ManyRelatedField):
    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        if not self.allow_empty and not data:
            self.fail("empty")
        child = self.child_relation
        found = {getattr(obj, child.slug_field): obj
                 for obj in child.get_queryset().filter(**{f"{child.slug_field}__in": data})}
        missing = [value for value in data if value not in found]
        if missing:
            raise serializers.ValidationError([child.error_messages["does_not_exist"].format(
                slug_name=child.slug_field, value=value) for value in missing[:10]])
        return [found[value] for value in data]


class OrgScopedRelatedField(ReferenceField):
    """A reference to an object of the caller's organization; any other organization's does not exist."""

    def get_queryset(self):
        return self.model.objects.filter(organization=self.context["request"].user.organization)


class OrgAPIMixin:
    """Views see the caller's organization and actor; their querysets are filtered by it.

    Query parameters are given once and not empty: `?active=` or `?group=1&group=2` would otherwise
    silently mean no filter, or the last one.
    """

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        errors = {}
        for name, values in request.query_params.lists():
            if len(values) > 1:
                errors[name] = ["Give this parameter once."]
            elif values[0] == "":
                errors[name] = ["Must not be empty: leave the parameter out instead."]
        if errors:
            raise exceptions.ValidationError(errors)

    def get_queryset(self):
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return queryset.none()
        return queryset.filter(organization=self.organization)

    @property
    def organization(self):
        return self.request.user.organization

    @property
    def actor(self):
        return self.request.user.actor


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while a hot path allocates many short-lived, acyclic objects.

    Otherwise a full collection may walk every object in the process (compiled policies hold
    hundreds of thousands) several times per request. Refcounting still frees everything at once;
    any cycle is collected after the pause.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

