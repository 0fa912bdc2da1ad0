"""One auth path for the API: a bearer token of an organization, or a console session."""
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from audit.actors import Actor, token_actor, user_actor

from .models import ApiToken, Organization, OrgRole, TokenScope, WRITER_ROLES

LAST_USED_RESOLUTION = timedelta(minutes=1)  # don't write on every request


@dataclass(frozen=True)
class Principal:
    """Who is calling, for which organization, with which rights."""

    organization: Organization
    actor: Actor
    can_write: bool
    scope: str  # "api", "scim" or "console"
    role: str | None = None

    is_authenticated = True
    is_anonymous = False


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"
    scope = TokenScope.API

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = (ApiToken.objects.select_related("organization")
                 .filter(digest=ApiToken.digest_of(raw), revoked_at__isnull=True).first())
        if token is None or token.scope != self.scope:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        principal = Principal(organization=token.organization, actor=token_actor(token), can_write=True,
                              scope=token.scope)
        return principal, token

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class ConsoleSessionAuthentication(authentication.SessionAuthentication):
    """A signed-in console user acts in the organization chosen in their session."""

    SESSION_KEY = "organization_id"

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        org_role = org_role_for_session(user, request._request.session.get(self.SESSION_KEY))
        if org_role is None:
            raise exceptions.PermissionDenied("You are not a member of any organization.")
        principal = Principal(organization=org_role.organization, actor=user_actor(user),
                              can_write=org_role.role in WRITER_ROLES, scope="console", role=org_role.role)
        return principal, None


def org_role_for_session(user, organization_id):
    roles = OrgRole.objects.select_related("organization").filter(user=user)
    if organization_id is not None:
        chosen = roles.filter(organization_id=organization_id).first()
        if chosen is not None:
            return chosen
    return roles.order_by("organization__slug").first()
