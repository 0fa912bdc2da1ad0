from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from accounts.models import OrgRole
from audit import services as audit
from audit.actors import Actor, user_actor
from audit.models import EventKind

from .access import CODE_ENROLLED_KEY, METHOD_KEY
from .mfa import confirmed_device
from .models import SignInPolicy

DEFAULT_SESSION_MINUTES = SignInPolicy._meta.get_field("session_minutes").default


def client_ip(request) -> str | None:
    # REMOTE_ADDR only: a forwarded-for header is whatever the client says unless a trusted proxy set it.
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_logged_in)
def record_password_sign_in(sender, request, user, **kwargs):
    """A password sign-in is an event in every organization the user has a role in (an SSO sign-in
    is recorded by identity.services, in the one organization whose IdP signed the user in)."""
    if request is not None and request.session.get(METHOD_KEY, "password") != "password":
        return  # identity.access.start_sso_session set it in the fresh session before login()
    if request is not None and confirmed_device(user) is not None:
        request.session[CODE_ENROLLED_KEY] = True  # whoever turned codes on is asked for one, whatever the role
    roles = list(OrgRole.objects.filter(user=user).select_related("organization"))
    if request is not None and roles:
        # the shortest session lifetime among the user's organizations, since the session may act in each
        lifetimes = dict(SignInPolicy.objects.filter(organization__in=[r.organization_id for r in roles])
                         .values_list("organization_id", "session_minutes"))
        request.session.set_expiry(60 * min(lifetimes.get(r.organization_id, DEFAULT_SESSION_MINUTES)
                                            for r in roles))
    with transaction.atomic():
        for org_role in roles:
            audit.record(organization=org_role.organization, kind=EventKind.CONSOLE_LOGIN, actor=user_actor(user),
                         payload={"method": "password", "role": org_role.role, "ip": client_ip(request)})


@receiver(user_login_failed)
def record_failed_password(sender, credentials, request=None, **kwargs):
    """A wrong password for a user with roles is an event in their organizations (an unknown user
    name belongs to no organization and leaves no event)."""
    username = str(credentials.get("username", ""))[:150]
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        return
    with transaction.atomic():
        for org_role in OrgRole.objects.filter(user=user).select_related("organization"):
            audit.record(organization=org_role.organization, kind=EventKind.CONSOLE_SIGN_IN_REFUSED,
                         actor=Actor("user", user.pk, username),
                         payload={"method": "password", "reason": "wrong_password", "ip": client_ip(request)})
