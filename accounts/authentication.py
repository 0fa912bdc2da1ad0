"""The API's bearer tokens: each belongs to one organization and has one scope (API or SCIM). A console
session is the other way in (identity.authentication)."""
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from audit.actors import Actor, token_actor

from .models import ApiToken, Organization, TokenScope

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
