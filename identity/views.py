from base64 import b32encode

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from accounts.models import OrgRole

from . import mfa as mfa_devices
from . import saml
from .access import CODE_ENROLLED_KEY, METHOD_KEY, ORGANIZATION_KEY, SSO_ORGANIZATION_KEY, access_for_session
from .forms import ThrottledAuthenticationForm
from .models import IdentityProvider, Protocol, SignInPolicy
from .services import SignInRefused, VerifiedIdentity, complete_sso_sign_in, record_refusal
from .signals import client_ip


class SignInView(auth_views.LoginView):
    template_name = "identity/login.html"
    authentication_form = ThrottledAuthenticationForm
    http_method_names = ["get", "head", "post"]  # not Django's PUT-as-POST


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


def sign_in_through_idp(request, provider: IdentityProvider, identity: VerifiedIdentity):
    """The end of every IdP sign-in: the console user signed in to a session bound to the
    organization (or the refusal recorded and shown)."""
    try:
        user = complete_sso_sign_in(provider=provider, identity=identity, ip=client_ip(request))
    except SignInRefused as refusal:
        return sso_refused(request, provider, refusal, subject=identity.subject)
    organization = provider.organization
    request.sign_in_method = provider.protocol  # read by the sign-in signal, which login() sends
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[METHOD_KEY] = provider.protocol
    request.session[ORGANIZATION_KEY] = request.session[SSO_ORGANIZATION_KEY] = organization.pk
    policy = SignInPolicy.objects.filter(organization=organization).first() or SignInPolicy()  # the defaults
    request.session.set_expiry(60 * policy.session_minutes)
    return redirect("home")


def sso_refused(request, provider: IdentityProvider, refusal: SignInRefused, *, subject: str = ""):
    record_refusal(organization=provider.organization, method=provider.protocol, reason=refusal.reason,
                   ip=client_ip(request), subject=subject)
    return render(request, "identity/sso_refused.html",
                  {"organization": provider.organization, "message": str(refusal)}, status=403)


def saml_provider(slug: str) -> IdentityProvider:
    return get_object_or_404(IdentityProvider.objects.select_related("organization"), organization__slug=slug,
                             protocol=Protocol.SAML, enabled=True)


@require_safe
def saml_login(request, slug):
    """Send the browser to the organization's IdP with an AuthnRequest (HTTP-Redirect)."""
    provider = saml_provider(slug)
    request_id, url = saml.authn_request(provider)
    response = redirect(url)
    saml.remember_request(response, request=request, provider=provider, request_id=request_id)
    return response


@csrf_exempt  # the IdP posts here; the AuthnRequest bound to this browser does what a CSRF token would
@require_POST
def saml_acs(request, slug):
    """The IdP's answer (HTTP-POST binding)."""
    provider = saml_provider(slug)
    try:
        identity = saml.verified_identity(provider, saml_response=request.POST.get("SAMLResponse", ""),
                                          request_id=saml.pending_request(request, provider=provider))
    except SignInRefused as refusal:
        response = sso_refused(request, provider, refusal)
    else:
        response = sign_in_through_idp(request, provider, identity)
    saml.forget_request(response, provider=provider)  # an AuthnRequest is answered once
    return response


@require_safe
def saml_metadata(request, slug):
    """Our service provider's metadata, for the organization's admin to give their IdP."""
    return HttpResponse(saml.sp_metadata(saml_provider(slug)), content_type="application/samlmetadata+xml")
