from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import OrgRole
from audit import services as audit
from audit.actors import Actor, user_actor
from audit.models import EventKind

from .access import CODE_ENROLLED_KEY, METHOD_KEY
from .mfa import confirmed_device
from .models import SignInPolicy
from .services import record_in_each_organization


def client_ip(request) -> str | None:
    # REMOTE_ADDR only: a forwarded-for header is whatever the client says unless a trusted proxy set it.
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_logged_in)
def limit_session(sender, request, user, **kwargs):
    """A session ends as long after sign-in as the strictest of the user's organizations allows
    (SignInPolicy.session_minutes), however it signed in."""
    if request is None:
        return
    organization_ids = set(OrgRole.objects.filter(user=user).values_list("organization_id", flat=True))
    policies = dict(SignInPolicy.objects.filter(organization_id__in=organization_ids)
                    .values_list("organization_id", "session_minutes"))
    default = SignInPolicy._meta.get_field("session_minutes").default
    minutes = min((policies.get(pk, default) for pk in organization_ids), default=default)
    request.session.set_expiry(timezone.now() + timedelta(minutes=minutes))


@receiver(user_logged_in)
def record_password_sign_in(sender, request, user, **kwargs):
    """A password sign-in is an event in every organization the user has a role in (an SSO sign-in
    is recorded by identity.services, in the one organization whose IdP signed the user in)."""
    if request is not None and request.session.get(METHOD_KEY, "password") != "password":
        return  # identity.access.start_sso_session set it in the fresh session before login()
    if request is not None and confirmed_device(user) is not None:
        request.session[CODE_ENROLLED_KEY] = True  # whoever turned codes on is asked for one, whatever the role
    with transaction.atomic():
        for org_role in OrgRole.objects.filter(user=user).select_related("organization"):
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
        record_in_each_organization(user, kind=EventKind.CONSOLE_SIGN_IN_REFUSED,
                                    actor=Actor("user", user.pk, username),
                                    payload={"method": "password", "reason": "wrong_password",
                                             "ip": client_ip(request)})
