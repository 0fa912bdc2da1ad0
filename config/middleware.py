"""Request limits enforced before any view reads the body."""
from io import BytesIO

from django.conf import settings

from .api import problem_response

API_PREFIXES = ("/api/", "/scim/")


class RequestSizeLimitMiddleware:
    """Refuse API bodies over API_MAX_BODY_BYTES with 413 problem+json, before reading them.

    A body within the limit is read here, so that Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB,
    meant for the console's forms) does not answer an HTML 400 to a JSON batch the API documents.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIXES):
            refused = self.refuse(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def refuse(self, request):
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_response(400, "Bad request", "Content-Length is not a number.")
        if length > limit:
            return problem_response(413, "Request body too large",
                                    f"The body has {length} bytes; the limit is {limit}. Send smaller batches.")
        if length <= 0 and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            # Django reads no body without a Content-Length: the request would silently look empty.
            return problem_response(411, "Length required",
                                    f"Send the body with a Content-Length header (at most {limit} bytes), "
                                    f"not chunked.")
        if length > 0:
            request._body = request.read(length)  # what HttpRequest.body keeps, read within our limit
            request._stream = BytesIO(request._body)
        return None
