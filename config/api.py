"""The one error format, the one pagination class and the serializer base every API uses."""
import gc
from contextlib import contextmanager
from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"


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
        body = problem(response.status_code, "Validation failed", detail, errors)
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
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"
    ordering = "-id"


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know, so a typo never silently does nothing."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    pass



@extend_schema_field(OpenApiTypes.STR)
class OrgScopedRelatedField(serializers.SlugRelatedField):
    """A reference to an object of the caller's organization; any other organization's does not exist."""

    def __init__(self, model, slug_field="pk", **kwargs):
        self.model = model
        super().__init__(slug_field=slug_field, **kwargs)

    def get_queryset(self):
        return self.model.objects.filter(organization=self.context["request"].user.organization)


class OrgAPIMixin:
    """Views see the caller's organization and actor; their querysets are filtered by it."""

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

