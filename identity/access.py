"""Which organization a signed-in console session acts in, and whether it may.

One function answers for the console's pages and the API's session authentication alike, so the
two cannot disagree. A session may act in an organization where its user has a role, and
- if the organization requires SSO: only when the session was signed in through that
  organization's IdP, unless the user is its break-glass owner;
- as an owner or admin without SSO, or as anyone who turned one-time codes on: only once the
  session passed a TOTP check (django-otp).
"""
from dataclasses import dataclass

from django.contrib.auth import login

from accounts.models import WRITER_ROLES, OrgRole, Role

from .models import SignInPolicy

ORGANIZATION_KEY = "organization_id"  # the organization chosen in the session
SSO_ORGANIZATION_KEY = "sso_organization_id"  # set only by a sign-in through that organization's IdP
METHOD_KEY = "sign_in_method"  # "password", "oidc" or "saml"
CODE_ENROLLED_KEY = "totp_enrolled"  # the user had one-time codes on when this session signed in


@dataclass(frozen=True)
class Access:
    org_role: OrgRole | None
    # Why the session may not act (yet): "no_role", "sso_required" or "mfa_required"; None when it may.
    refused: str | None = None

    @property
    def allowed(self) -> bool:
        return self.refused is None


def access_for_session(user, session) -> Access:
    roles = OrgRole.objects.select_related("organization").filter(user=user)
    chosen = None
    if (organization_id := session.get(ORGANIZATION_KEY)) is not None:
        chosen = roles.filter(organization_id=organization_id).first()
    if chosen is None:
        chosen = roles.order_by("organization__slug").first()
    if chosen is None:
        return Access(None, "no_role")
    signed_in_by_sso = session.get(SSO_ORGANIZATION_KEY) == chosen.organization_id
    if not signed_in_by_sso:
        policy = SignInPolicy.objects.filter(organization_id=chosen.organization_id).first()
        # the break-glass exception holds only while its user is still an owner (a demoted one loses it)
        break_glass = policy is not None and policy.break_glass_user_id == user.pk and chosen.role == Role.OWNER
        if policy is not None and policy.require_sso and not break_glass:
            return Access(chosen, "sso_required")
        if (chosen.role in WRITER_ROLES or session.get(CODE_ENROLLED_KEY)) and not _otp_verified(user):
            return Access(chosen, "mfa_required")
    return Access(chosen)


def _otp_verified(user) -> bool:
    # django_otp's OTPMiddleware gives request.user an is_verified() that reads the session.
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


def start_sso_session(request, *, organization, user, method: str, session_minutes: int) -> None:
    """Sign `user` in to a fresh session that counts as signed in through `organization`'s IdP.

    The old session is flushed first: login() keeps the data of an anonymous session (it only cycles
    its key) but flushes another user's, and METHOD_KEY must be in place before login() fires
    user_logged_in, for identity.signals to leave the sign-in to the IdP's audit event.
    """
    request.session.flush()
    request.session[METHOD_KEY] = method
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[ORGANIZATION_KEY] = request.session[SSO_ORGANIZATION_KEY] = organization.pk
    request.session.set_expiry(session_minutes * 60)
