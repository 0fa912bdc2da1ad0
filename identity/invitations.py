"""Inviting people to an organization's console without SSO and without a shell.

An invitation is a link holding a random token (only its digest is kept), good once, for seven days.
Accepting it either creates the invited person's console user (their user name is the invited address)
or, when a user with that address exists already, asks that user to sign in first: a link forwarded
to someone else must never take over an existing account.
"""
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts import services as accounts
from accounts.models import OrgRole, Role
from audit import services as audit
from audit.actors import Actor, user_actor
from audit.models import EventKind

from .models import Invitation

VALID_FOR = timedelta(days=7)


class InvitationRefused(Exception):
    """An invitation that cannot be accepted (any more); the message is what the person is shown."""


def link_for(raw_token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("invitation", args=[raw_token])


def find(raw_token: str) -> Invitation | None:
    return (Invitation.objects.select_related("organization", "invited_by")
            .filter(token_digest=Invitation.digest_of(raw_token)).first())


def live(organization):
    """The organization's invitations that can still be accepted."""
    return Invitation.objects.filter(organization=organization, accepted_at__isnull=True, revoked_at__isnull=True,
                                     expires_at__gt=timezone.now())


def refusal(invitation: Invitation) -> str | None:
    """Why the invitation cannot be accepted, in words; None when it can."""
    if invitation.accepted_at is not None:
        return "This invitation was accepted already: each link is good once. Sign in instead."
    if invitation.revoked_at is not None:
        return "This invitation was withdrawn. Ask the person who invited you for a new one."
    if invitation.expires_at <= timezone.now():
        return "This invitation has expired. Ask the person who invited you for a new one."
    return None


def existing_user(email: str):
    """The user the invited address already belongs to (as user name or e-mail address), if any.
    Users an IdP created never count: the address they carry is only what that IdP asserted."""
    return (get_user_model().objects.filter(Q(username__iexact=email) | Q(email__iexact=email))
            .filter(external_identities__isnull=True).exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX)
            .order_by("pk").first())


def is_invitee(user, invitation: Invitation) -> bool:
    if user.external_identities.exists() or not user.has_usable_password():
        return False  # signed in through an IdP: its address proves nothing to another organization
    email = invitation.email.lower()
    return user.get_username().lower() == email or (user.email or "").lower() == email


def invite(*, organization, email: str, role: str, actor: Actor, invited_by=None) -> tuple[Invitation, str]:
    """Invite `email` with `role`; returns the invitation and the only copy of its token.

    A live invitation to the same address is withdrawn (one link per person at a time). The link is
    mailed once the invitation is committed; the audit event never holds the token.
    """
    email = email.strip()
    username_length = get_user_model()._meta.get_field("username").max_length
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": f"Not an e-mail address: {email!r}."}) from None
    if len(email) > username_length:
        raise ValidationError({"email": f"At most {username_length} characters."})
    if role not in Role.values:
        raise ValidationError({"role": f"Not a role: {role!r}."})
    raw = secrets.token_urlsafe(32)
    with transaction.atomic():
        now = timezone.now()
        replaced = list(live(organization).select_for_update().filter(email__iexact=email).values_list("pk", flat=True))
        Invitation.objects.filter(pk__in=replaced).update(revoked_at=now)
        invitation = Invitation.objects.create(organization=organization, email=email, role=role,
                                               token_digest=Invitation.digest_of(raw), invited_by=invited_by,
                                               expires_at=now + VALID_FOR)
        audit.record(organization=organization, kind=EventKind.CONSOLE_USER_INVITED, actor=actor,
                     payload={"invitation": invitation.pk, "email": email, "role": role,
                              "expires_at": invitation.expires_at.isoformat(), "replaces": replaced})
        transaction.on_commit(lambda: send_invitation(invitation, raw), robust=True)
    return invitation, raw


def send_invitation(invitation: Invitation, raw_token: str) -> None:
    """The plain-text mail with the link (through settings.EMAIL_BACKEND)."""
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "The platform's operator"
    organization = invitation.organization
    send_mail(
        subject=f"You are invited to {organization.name}'s AI-data governance console",
        message=(f"{inviter} invited you to {organization.name}'s AI-data governance console as "
                 f"{invitation.get_role_display().lower()}.\n\n"
                 f"Accept with this link, good once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC:\n\n"
                 f"{link_for(raw_token)}\n\n"
                 f"If you did not expect this invitation, ignore this mail.\n"),
        from_email=None, recipient_list=[invitation.email])


def accept(*, token: str, user=None, password: str | None = None):
    """Accept an invitation: as the signed-in `user` it was sent to, or with a `password` for the new
    user it creates. Returns the user, now with the invitation's role.

    Raises InvitationRefused (used, withdrawn, expired, the wrong person, or an address that
    belongs to an existing user who is not signed in), having changed nothing.
    """
    with transaction.atomic():
        invitation = (Invitation.objects.select_for_update().select_related("organization")
                      .filter(token_digest=Invitation.digest_of(token)).first())
        if invitation is None:
            raise InvitationRefused("This invitation does not exist.")
        if reason := refusal(invitation):
            raise InvitationRefused(reason)
        if user is not None:
            if not is_invitee(user, invitation):
                raise InvitationRefused(f"This invitation is for {invitation.email}, and you are signed in as "
                                        f"{user.get_username()}. Sign out, then open the link again.")
        elif existing_user(invitation.email) is not None:
            raise InvitationRefused(f"A console user {invitation.email} exists already: sign in first, then "
                                    f"open the link again to accept.")
        elif not password:
            raise InvitationRefused("Choose a password.")
        else:
            user = get_user_model().objects.create_user(username=invitation.email, email=invitation.email,
                                                        password=password)
        organization, actor = invitation.organization, user_actor(user)
        if OrgRole.objects.filter(organization=organization, user=user).exists():
            try:  # the last owner invited again with a lesser role stays an owner
                accounts.change_org_role(organization=organization, user=user, role=invitation.role, actor=actor)
            except ValidationError as error:
                raise InvitationRefused(" ".join(error.messages)) from None
        else:
            accounts.add_org_role(organization=organization, user=user, role=invitation.role, actor=actor)
        invitation.accepted_at, invitation.accepted_by = timezone.now(), user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit.record(organization=organization, kind=EventKind.CONSOLE_USER_INVITATION_ACCEPTED, actor=actor,
                     payload={"invitation": invitation.pk, "email": invitation.email, "user": user.get_username(),
                              "role": invitation.role})
    return user


@transaction.atomic
def revoke(*, invitation: Invitation, actor: Actor) -> Invitation:
    """Withdraw an invitation: its link is refused from now on."""
    invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation.pk)
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit.record(organization=invitation.organization, kind=EventKind.CONSOLE_USER_INVITATION_REVOKED,
                     actor=actor, payload={"invitation": invitation.pk, "email": invitation.email,
                                           "role": invitation.role})
    return invitation
