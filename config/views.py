"""Error pages: problem+json under /api/ and /scim/, Django's own pages for the console."""
from django.views import defaults

from .api import api_not_found, api_server_error

API_PREFIXES = ("/api/", "/scim/")


def not_found(request, exception=None):
    if request.path.startswith(API_PREFIXES):
        return api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith(API_PREFIXES):
        return api_server_error(request)
    return defaults.server_error(request)
