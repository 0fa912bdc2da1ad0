"""Signing a console user in through their organization's IdP, once the protocol (identity.oidc,
identity.saml) has verified what the IdP said: who (issuer, subject), their e-mail address, their
groups, and the one-time value (OIDC nonce, SAML assertion id) that makes a replay detectable.

Everything after the protocol is here, once for both: replay, the organization's e-mail domains,
the role from the groups, the user created at first sign-in, the role following the IdP at every
sign-in, and an audit event for the sign-in or for the refusal.
"""
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import services as accounts
from accounts.models import OrgRole, Role
from audit import services as audit
from audit.actors import Actor, user_actor
from audit.models import EventKind

from .models import ExternalIdentity, IdentityProvider, SeenAssertion

ROLE_RANK = {Role.AUDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


class SignInRefused(Exception):
    """A sign-in that must not succeed. `reason` is a stable code for the audit trail and tests;
    the message is what the person is shown."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedIdentity:
    """What the IdP asserted, after the protocol checked signature, issuer, audience and times."""

    issuer: str
    subject: str
    email: str
    groups: tuple[str, ...]
    one_time_value: str  # the OIDC nonce or the SAML assertion id
    valid_until: datetime  # how long the one-time value must be remembered
    display_name: str = ""


def role_for_groups(provider: IdentityProvider, groups) -> str | None:
    """The highest role any of the person's groups is mapped to; None when none is mapped."""
    mapped = [provider.role_mapping[group] for group in groups if provider.role_mapping.get(group) in ROLE_RANK]
    return max(mapped, key=ROLE_RANK.__getitem__) if mapped else None


def idp_actor(provider: IdentityProvider, subject: str = "") -> Actor:
    return Actor("idp", provider.pk, f"{provider.protocol}:{subject}"[:200])


def complete_sso_sign_in(*, provider: IdentityProvider, identity: VerifiedIdentity, ip: str | None):
    """Check what the protocol cannot, then return the console user to sign in with their role set.

    Raises SignInRefused, having changed nothing; the caller records the refusal
    (`record_refusal`) outside this transaction, which is rolled back.
    """
    organization = provider.organization
    with transaction.atomic():
        try:
            with transaction.atomic():
                SeenAssertion.objects.create(organization=organization, protocol=provider.protocol,
                                             identifier=identity.one_time_value[:255],
                                             expires_at=identity.valid_until)
        except IntegrityError:
            raise SignInRefused("replay", "This sign-in response was used already. Start again from the "
                                          "sign-in page.") from None
        domain = identity.email.rpartition("@")[2].lower()
        if organization.email_domains and domain not in organization.email_domains:
            raise SignInRefused("foreign_domain", f"{identity.email or 'This account'} does not belong to "
                                                  f"{organization.name}: its e-mail domain is not one of the "
                                                  f"organization's.")
        role = role_for_groups(provider, identity.groups)
        if role is None:
            raise SignInRefused("no_mapped_group", f"Your identity provider signed you in, but none of your "
                                                   f"groups gives a role in {organization.name}'s console. Ask "
                                                   f"your administrator to add you to one of its console groups.")
        link = (ExternalIdentity.objects.select_for_update().select_related("user")
                .filter(organization=organization, issuer=identity.issuer, subject=identity.subject).first())
        if link is None:
            user = get_user_model().objects.create_user(username=_new_username(organization, identity),
                                                        email=identity.email)
            user.set_unusable_password()  # this user signs in through the IdP only
            user.save(update_fields=["password"])
            link = ExternalIdentity.objects.create(organization=organization, user=user, issuer=identity.issuer,
                                                   subject=identity.subject, email=identity.email)
        user = link.user
        link.email, link.last_sign_in_at = identity.email, timezone.now()
        link.save(update_fields=["email", "last_sign_in_at"])
        now = _follow_the_idp(organization, user, role, actor=idp_actor(provider, identity.subject))
        kept = {} if now == role else {"groups_role": role, "kept": "the organization's last owner"}
        audit.record(organization=organization, kind=EventKind.CONSOLE_LOGIN, actor=user_actor(user),
                     payload={"method": provider.protocol, "role": now, "ip": ip, "issuer": identity.issuer,
                              "subject": identity.subject, "groups": sorted(identity.groups)[:50], **kept})
    return user


def record_refusal(*, organization, method: str, reason: str, ip: str | None, detail: str = "",
                   subject: str = "") -> None:
    """An audit event for a refused sign-in (in its own transaction: the attempt changed nothing else)."""
    audit.record(organization=organization, kind=EventKind.CONSOLE_SIGN_IN_REFUSED,
                 actor=Actor("idp" if method != "password" else "user", None, subject[:200] or "unknown"),
                 payload={"method": method, "reason": reason, "ip": ip, "detail": detail[:500]})


def _follow_the_idp(organization, user, role: str, *, actor: Actor) -> str:
    """Give the user the role their groups map to, as the IdP says at every sign-in, except that the
    organization's last owner stays an owner (the console's rule, which an IdP change must not
    break either); returns the role the user has now."""
    current = OrgRole.objects.filter(organization=organization, user=user).values_list("role", flat=True).first()
    if current is None:
        accounts.add_org_role(organization=organization, user=user, role=role, actor=actor)
    elif current != role:
        try:
            accounts.change_org_role(organization=organization, user=user, role=role, actor=actor)
        except ValidationError:
            return current  # the last owner: kept, and the sign-in event says so
    return role


def _new_username(organization, identity: VerifiedIdentity) -> str:
    """A fresh user name for a person first seen through an IdP, in the organization's own namespace
    (`sso:<org>:<address>`), so that it is never an address someone could be invited as, nor the
    name of a user another organization created: an IdP vouches for its own organization only."""
    User = get_user_model()
    base = f"sso:{organization.slug}:{identity.email or identity.subject}"[:140]
    name, n = base, 1
    while User.objects.filter(username=name).exists():
        n += 1
        name = f"{base}~{n}"
    return name


def record_in_each_organization(user, *, kind: str, actor: Actor, payload: dict) -> None:
    """One event in every organization the user has a role in: a change to the person, not to one
    organization, that each organization's trail must show."""
    for org_role in OrgRole.objects.filter(user=user).select_related("organization"):
        audit.record(organization=org_role.organization, kind=kind, actor=actor, payload=payload)


@transaction.atomic
def reset_password(*, form, ip: str | None):
    """Save the password chosen through a reset link (Django's SetPasswordForm) and record it."""
    user = form.save()
    record_in_each_organization(user, kind=EventKind.CONSOLE_USER_PASSWORD_RESET, actor=user_actor(user),
                                payload={"user": user.get_username(), "ip": ip})
    return user
