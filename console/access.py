"""Who is looking at the console, in which organization, and whether they may change things.

Every console view runs in the organization chosen in the session (the API's console
authentication reads the same key), and everything it reads is filtered by that organization.
Owners and admins write; auditors read, and a write they attempt anyway is refused with a 403.
"""
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse

from accounts.models import OrgRole, Role
from audit import selectors as audit_selectors
from identity.access import access_for_session


def console_view(view):
    """Resolve the signed-in user's role in the organization; `request.org_role` and `request.organization` follow."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        access = access_for_session(request.user, request.session)
        if access.refused == "no_role":
            return render(request, "console/no_organization.html", status=403)
        if access.refused == "sso_required":
            return redirect_to_login(request.get_full_path(), reverse("sso-required"))
        if access.refused == "mfa_required":
            return redirect_to_login(request.get_full_path(), reverse("mfa"))
        request.org_role = access.org_role
        request.organization = access.org_role.organization
        return view(request, *args, **kwargs)

    return wrapper


def writer_required(view):
    """Refuse (403) a user whose role in the organization is read-only."""

    @console_view
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.org_role.can_write:
            raise PermissionDenied("Your role in this organization is read-only.")
        return view(request, *args, **kwargs)

    return wrapper


def owner_required(view):
    """Refuse (403) anyone but the organization's owners: who may use the console is theirs to decide."""

    @console_view
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.org_role.role != Role.OWNER:
            raise PermissionDenied("Only the organization's owners change this.")
        return view(request, *args, **kwargs)

    return wrapper


def page_context(request, section: str, **context) -> dict:
    """What every console page shows around its content: the organization, the role, the switcher."""
    org_role = request.org_role
    return {
        "org_role": org_role,
        "organization": org_role.organization,
        "can_write": org_role.can_write,
        "org_roles": OrgRole.objects.filter(user=request.user).select_related("organization")
        .order_by("organization__name"),
        "section": section,
        # Owners and admins see a stalled audit chain on every page: someone must repair it.
        "chain_stall": audit_selectors.chain_stall(org_role.organization) if org_role.can_write else None,
        **context,
    }
