"""The API's second way in: a signed-in console user acts in the organization chosen in their
session, with the same checks as the console's pages (identity.access)."""
from rest_framework import authentication, exceptions

from accounts.authentication import Principal
from accounts.models import WRITER_ROLES
from audit.actors import user_actor

from .access import access_for_session

REFUSALS = {
    "no_role": "You have no role in any organization.",
    "sso_required": "This organization requires signing in through its identity provider.",
    "mfa_required": "Owners and admins must pass a one-time-code check (TOTP) in this session first.",
}


class ConsoleSessionAuthentication(authentication.SessionAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        access = access_for_session(user, request._request.session)
        if not access.allowed:
            raise exceptions.PermissionDenied(REFUSALS[access.refused])
        org_role = access.org_role
        principal = Principal(organization=org_role.organization, actor=user_actor(user),
                              can_write=org_role.role in WRITER_ROLES, scope="console", role=org_role.role)
        return principal, None
