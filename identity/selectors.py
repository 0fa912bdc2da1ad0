"""Reads of an organization's console users and invitations, for the console's People page."""
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import OrgRole

from .invitations import live as live_invitations
from .models import ExternalIdentity


def console_users(organization) -> list[dict]:
    """The organization's console users with their role and how they sign in (an IdP identity here, a
    password, a confirmed authenticator app), in three queries."""
    org_roles = list(OrgRole.objects.filter(organization=organization).select_related("user")
                     .order_by("user__username"))
    user_ids = [org_role.user_id for org_role in org_roles]
    sso = set(ExternalIdentity.objects.filter(organization=organization, user_id__in=user_ids)
              .values_list("user_id", flat=True))
    totp = set(TOTPDevice.objects.filter(user_id__in=user_ids, confirmed=True).values_list("user_id", flat=True))
    return [{"user": org_role.user, "role": org_role.role, "role_label": org_role.get_role_display(),
             "sso": org_role.user_id in sso, "password": org_role.user.has_usable_password(),
             "totp": org_role.user_id in totp} for org_role in org_roles]


def pending_invitations(organization):
    return live_invitations(organization).select_related("invited_by").order_by("email")
