"""SCIM error responses (RFC 7644 §3.12): every failure, ours or the framework's, in one shape."""
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from django.views.decorators.csrf import csrf_exempt
import orjson
from rest_framework import exceptions, status

SCIM_CONTENT_TYPE = "application/scim+json"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A request the server refuses; `scim_type` is one of RFC 7644 §3.12's keywords, or None."""

    def __init__(self, status_code: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.scim_type = scim_type


def bad_request(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(status.HTTP_400_BAD_REQUEST, detail, scim_type)


def invalid_filter(detail: str) -> ScimError:
    return bad_request(detail, "invalidFilter")


def invalid_path(detail: str) -> ScimError:
    return bad_request(detail, "invalidPath")


def not_found(detail: str = "Resource not found.") -> ScimError:
    return ScimError(status.HTTP_404_NOT_FOUND, detail)


def conflict(detail: str) -> ScimError:
    return ScimError(status.HTTP_409_CONFLICT, detail, "uniqueness")


def error_body(status_code: int, detail: str, scim_type: str | None = None) -> dict:
    body = {"schemas": [ERROR_URN], "status": str(status_code), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def error_response(status_code: int, detail: str, scim_type: str | None = None, headers=None) -> HttpResponse:
    response = HttpResponse(orjson.dumps(error_body(status_code, detail, scim_type)), status=status_code,
                            content_type=SCIM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# The services name fields as the models do; a SCIM client knows them by their attribute names.
SCIM_ATTRIBUTE_NAMES = {"user_name": "userName", "external_id": "externalId", "display_name": "displayName"}


def _validation_detail(error: DjangoValidationError) -> tuple[str, bool]:
    """A service's ValidationError as one sentence, and whether it is a uniqueness clash."""
    if hasattr(error, "message_dict"):
        parts = [f"{SCIM_ATTRIBUTE_NAMES.get(field, field)}: {' '.join(messages)}"
                 for field, messages in error.message_dict.items()]
    else:
        parts = list(error.messages)
    detail = "; ".join(parts) or "Invalid value."
    return detail, "is taken" in detail


def scim_exception_handler(exc, context):
    """DRF's exception hook for the SCIM views: the SCIM error shape, never problem+json."""
    headers = {}
    if isinstance(exc, ScimError):
        return error_response(exc.status_code, exc.detail, exc.scim_type)
    if isinstance(exc, DjangoValidationError):
        detail, uniqueness = _validation_detail(exc)
        return error_response(409 if uniqueness else 400, detail, "uniqueness" if uniqueness else "invalidValue")
    if isinstance(exc, Http404):
        return error_response(404, "Resource not found.")
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a server error: Django's handler answers (and logs) it
    scim_type = None
    if isinstance(exc, exceptions.ParseError):
        scim_type = "invalidSyntax"
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, str(detail), scim_type, headers)


@csrf_exempt
def scim_not_found(request, *args, **kwargs):
    """Any path under /scim/v2/ that names no endpoint."""
    return error_response(404, f"No SCIM endpoint at {request.path}.")
