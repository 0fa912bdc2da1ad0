"""Per-token (or per console user) request throttling: 429 with Retry-After past the rate."""
from rest_framework.throttling import SimpleRateThrottle

from .authentication import Principal


class PrincipalRateThrottle(SimpleRateThrottle):
    """One bucket per API token, or per console user, across processes when the cache is shared (Redis)."""

    scope = "principal"

    def get_cache_key(self, request, view):
        principal = request.user
        if not isinstance(principal, Principal):
            return None  # unauthenticated requests are refused before they cost anything
        actor = principal.actor
        return self.cache_format % {"scope": self.scope, "ident": f"{actor.kind}:{actor.id}"}


class ScimTokenRateThrottle(PrincipalRateThrottle):
    """SCIM tokens count apart from the API: an identity provider's full sync comes in bursts."""

    scope = "scim"
