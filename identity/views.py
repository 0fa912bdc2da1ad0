from base64 import b32encode

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from accounts.models import OrgRole

from . import mfa as mfa_devices
from . import oidc
from .access import ORGANIZATION_KEY, start_sso_session
from .forms import SingleSignOnForm, ThrottledAuthenticationForm
from .models import IdentityProvider, Protocol, SignInPolicy
from .services import SignInRefused, complete_sso_sign_in, record_refusal
from .signals import client_ip


class SignInView(auth_views.LoginView):
    template_name = "identity/login.html"
    authentication_form = ThrottledAuthenticationForm
    http_method_names = ["get", "head", "post"]  # not Django's PUT-as-POST

    def get_context_data(self, **kwargs):
        return {"sso_form": SingleSignOnForm(), **super().get_context_data(**kwargs)}


@require_POST
def sso_find(request):
    """The sign-in page's other form: a work e-mail address finds its organization's IdP."""
    form = SingleSignOnForm(request.POST)
    if form.is_valid():
        return redirect("sso-start", slug=form.provider.organization.slug)
    return render(request, "identity/login.html", {"form": ThrottledAuthenticationForm(request), "sso_form": form})


@require_safe
def sso_start(request, slug):
    """Send the browser to the organization's IdP; an organization without one is not told apart
    from an unknown one."""
    provider = _oidc_provider(slug)
    if provider is None:
        return _no_single_sign_on(request)
    try:
        url = oidc.authorization_url(request.session, provider=provider,
                                     redirect_uri=request.build_absolute_uri(reverse("sso-callback", args=[slug])))
    except SignInRefused as refusal:
        return _refused(request, provider, refusal)
    return redirect(url)


@require_safe
def sso_callback(request, slug):
    """The redirect URI to register at the IdP: its answer, checked, signs the person in."""
    provider = _oidc_provider(slug)
    if provider is None:
        return _no_single_sign_on(request)
    try:
        identity = oidc.verified_identity(request.session, provider=provider, params=request.GET)
        user = complete_sso_sign_in(provider=provider, identity=identity, ip=client_ip(request))
    except SignInRefused as refusal:
        return _refused(request, provider, refusal)
    policy = SignInPolicy.objects.filter(organization_id=provider.organization_id).first()
    start_sso_session(request, organization=provider.organization, user=user, method=provider.protocol,
                      session_minutes=policy.session_minutes if policy else SignInPolicy().session_minutes)
    return redirect("home")


def _oidc_provider(slug):
    return (IdentityProvider.objects.select_related("organization")
            .filter(organization__slug=slug, enabled=True, protocol=Protocol.OIDC).first())


def _no_single_sign_on(request):
    messages.info(request, SingleSignOnForm.NO_SINGLE_SIGN_ON)
    return redirect("login")


def _refused(request, provider, refusal: SignInRefused):
    record_refusal(organization=provider.organization, method=provider.protocol, reason=refusal.reason,
                   ip=client_ip(request), detail=str(refusal.__cause__ or "")[:500])
    return render(request, "identity/sso_refused.html", {"message": str(refusal), "reason": refusal.reason,
                                                          "organization": provider.organization}, status=403)


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


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def mfa(request):
    """The one-time-code check of a password session, or the enrolment of an authenticator app."""
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
            return redirect(next_url or "home")
    return render(request, "identity/mfa.html", {
        "enrolling": enrolling, "next": next_url, "error": error,
        "qr_code": mfa_devices.qr_code_svg_data_uri(device) if enrolling else None,
        "secret": b32encode(device.bin_key).decode() if enrolling else None,
    }, status=400 if error else 200)


@login_required
@require_GET
def sso_required(request):
    """A password session in an organization that requires SSO."""
    return render(request, "identity/sso_required.html", status=403)
