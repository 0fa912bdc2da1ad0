from base64 import b32encode

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import OrgRole

from . import mfa as mfa_devices
from .access import CODE_ENROLLED_KEY, ORGANIZATION_KEY, access_for_session
from .forms import SingleSignOnForm, ThrottledAuthenticationForm


class SignInView(auth_views.LoginView):
    template_name = "identity/login.html"
    authentication_form = ThrottledAuthenticationForm
    http_method_names = ["get", "head", "post"]  # not Django's PUT-as-POST

    def get_context_data(self, **kwargs):
        return {"sso_form": SingleSignOnForm(), **super().get_context_data(**kwargs)}


@require_GET
@login_required
def home(request):
    return redirect("console:overview")


@require_POST
@login_required
def switch_organization(request):
    """Act in another organization the user has a role in (its own sign-in rules then apply)."""
    org_role = OrgRole.objects.filter(user=request.user, organization_id=request.POST.get("organization")).first()
    if org_role is None:
        return HttpResponseBadRequest("Not a member of that organization.")
    request.session[ORGANIZATION_KEY] = org_role.organization_id
    return redirect("home")


@require_http_methods(["GET", "POST"])
@login_required
def mfa(request):
    """The one-time-code check of a password session, or the enrolment of an authenticator app: required
    for owners and admins, offered to everyone else (once on, they are asked for codes too)."""
    device = mfa_devices.confirmed_device(request.user)
    enrolling = device is None
    if enrolling:
        device = mfa_devices.pending_device(request.user)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = ""
    error = None
    if request.method == "POST":
        error = mfa_devices.verify(request, device, request.POST.get("code", ""))
        if error is None:
            request.session[CODE_ENROLLED_KEY] = True
            return redirect(next_url or "home")
    required = access_for_session(request.user, request.session).refused == "mfa_required"
    return render(request, "identity/mfa.html", {
        "enrolling": enrolling, "required": required, "next": next_url, "error": error,
        "qr_code": mfa_devices.qr_code_svg_data_uri(device) if enrolling else None,
        "secret": b32encode(device.bin_key).decode() if enrolling else None,
    }, status=400 if error else 200)


@require_GET
@login_required
def sso_required(request):
    """A password session in an organization that requires SSO."""
    return render(request, "identity/sso_required.html")
