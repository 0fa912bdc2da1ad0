"""TOTP for console users (RFC 6238, django-otp's TOTP device): owners and admins who sign in with a
password pass a one-time-code check in every session; the first time, they enrol an authenticator
app from a QR code. Enrolment and removal are audit events in each organization of the user."""
import segno
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import OrgRole
from audit.actors import Actor, user_actor
from audit.models import EventKind

from .services import record_in_each_organization

DEVICE_NAME = "Authenticator app"


def confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def pending_device(user) -> TOTPDevice:
    """The unconfirmed device being enrolled (one per user, kept across page loads)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def qr_code_svg_data_uri(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_data_uri(scale=4, border=2)


def verify(request, device: TOTPDevice, code: str) -> str | None:
    """Check a code and mark the session verified; None when it passed, else why not in words.

    Each code is accepted once (django-otp keeps the last time step used), and each failure makes
    the device wait longer before the next try (1 s, 2 s, 4 s...), so six digits cannot be guessed.
    A device being enrolled is confirmed by its first good code.
    """
    allowed, throttled = device.verify_is_allowed()
    if not allowed:
        wait = max(1, int((throttled.get("locked_until") - timezone.now()).total_seconds()) + 1)
        return f"Too many wrong codes: wait {wait} seconds, then enter the code your app shows then."
    code = "".join(ch for ch in code if ch.isdigit())
    if not code or not device.verify_token(code):
        return "That code is not right, or was used already. Enter the code your app shows now."
    if not device.confirmed:
        with transaction.atomic():
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            _record(device.user, user_actor(device.user), "enrolled")
    otp_login(request, device)
    return None


@transaction.atomic
def remove_devices(*, user, actor: Actor, organization=None) -> int:
    """Forget the user's authenticator (a lost phone): they enrol again at their next sign-in.

    Asked by an owner of `organization`, only for someone who is a console user of that organization
    alone: the code guards every organization the user is in, and an owner of one may not take it
    away from another's (whoever holds the password would enrol a new one there)."""
    if organization is not None and OrgRole.objects.filter(user=user).exclude(organization=organization).exists():
        raise ValidationError(f"{user.get_username()} is also a console user of another organization: only the "
                              f"platform operator can reset their one-time code.")
    removed, _ = TOTPDevice.objects.filter(user=user).delete()
    if removed:
        _record(user, actor, "removed")
    return removed


def _record(user, actor: Actor, change: str) -> None:
    record_in_each_organization(user, kind=EventKind.CONSOLE_USER_MFA_CHANGED, actor=actor,
                                payload={"user": user.get_username(), "factor": "totp", "change": change})
