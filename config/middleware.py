"""Request limits enforced before any view reads the body."""
from django.conf import settings

from .api import problem_response

API_PREFIXES = ("/api/", "/scim/")


class RequestSizeLimitMiddleware:
    """Refuse API bodies over API_MAX_BODY_BYTES with 413 problem+json, before reading them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIXES):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return problem_response(400, "Bad request", "Content-Length is not a number.")
            if length > settings.API_MAX_BODY_BYTES:
                return problem_response(413, "Request body too large",
                                        f"The body has {length} bytes; the limit is {settings.API_MAX_BODY_BYTES}. "
                                        f"Send smaller batches.")
        return self.get_response(request)
