"""Identity providers authenticate with a `scim`-scoped bearer token of one organization."""
from rest_framework import permissions

from accounts.authentication import BearerTokenAuthentication, Principal
from accounts.models import TokenScope


class ScimTokenAuthentication(BearerTokenAuthentication):
    scope = TokenScope.SCIM

    def authenticate_header(self, request):
        return f'{self.keyword} realm="scim"'


class ScimTokenPermission(permissions.BasePermission):
    """Only a SCIM token of an organization; console sessions and API tokens do not provision."""

    def has_permission(self, request, view):
        return isinstance(request.user, Principal) and request.user.scope == TokenScope.SCIM
