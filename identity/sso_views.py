"""Single sign-on's pages: the sign-in page's e-mail form, each organization's start URL (which
sends the browser to its IdP, OIDC or SAML), the IdP's answer at the redirect URI (OIDC) or the
assertion consumer service (SAML), and the SAML metadata to give the IdP. Both protocols end in
the same place: `complete_sso_sign_in`, then a fresh session bound to the organization, or a
refusal recorded in the audit trail and explained on a page."""
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from . import oidc, saml
from .access import start_sso_session
from .forms import SingleSignOnForm, ThrottledAuthenticationForm
from .models import IdentityProvider, Protocol, SignInPolicy
from .services import SignInRefused, VerifiedIdentity, complete_sso_sign_in, record_refusal
from .signals import client_ip


@require_POST
def sso_find(request):
    """The sign-in page's other form: a work e-mail address finds its organization's IdP."""
    form = SingleSignOnForm(request.POST)
    if form.is_valid():
        # A page that moves on by itself, not a redirect: browsers hold a form's redirects to the
        # page's CSP form-action ('self'), and the chain would end at the IdP, another origin.
        return render(request, "identity/sso_continue.html",
                      {"url": reverse("sso-start", args=[form.provider.organization.slug])})
    return render(request, "identity/login.html", {"form": ThrottledAuthenticationForm(request), "sso_form": form},
                  status=400)


@require_safe
def sso_start(request, slug):
    """Send the browser to the organization's IdP; an organization without one is not told apart
    from an unknown one."""
    provider = _provider(slug)
    if provider is None:
        messages.info(request, SingleSignOnForm.NO_SINGLE_SIGN_ON)
        return redirect("login")
    if provider.protocol == Protocol.SAML:
        request_id, url = saml.authn_request(provider)
        response = redirect(url)
        saml.remember_request(response, request=request, provider=provider, request_id=request_id)
        return response
    try:
        url = oidc.authorization_url(request.session, provider=provider,
                                     redirect_uri=request.build_absolute_uri(reverse("sso-callback", args=[slug])))
    except SignInRefused as refusal:
        return _refused(request, provider, refusal)
    return redirect(url)


@require_safe
def sso_callback(request, slug):
    """The OIDC redirect URI to register at the IdP: its answer, checked, signs the person in."""
    provider = _provider(slug, Protocol.OIDC)
    if provider is None:
        messages.info(request, SingleSignOnForm.NO_SINGLE_SIGN_ON)
        return redirect("login")
    try:
        identity = oidc.verified_identity(request.session, provider=provider, params=request.GET)
    except SignInRefused as refusal:
        return _refused(request, provider, refusal)
    return _sign_in(request, provider, identity)


@csrf_exempt  # the IdP posts here; the AuthnRequest bound to this browser does what a CSRF token would
@require_POST
def saml_acs(request, slug):
    """The SAML IdP's answer (HTTP-POST binding)."""
    provider = _saml_provider(slug)
    try:
        identity = saml.verified_identity(provider, saml_response=request.POST.get("SAMLResponse", ""),
                                          request_id=saml.pending_request(request, provider=provider))
    except SignInRefused as refusal:
        response = _refused(request, provider, refusal)
    else:
        response = _sign_in(request, provider, identity)
    saml.forget_request(response, provider=provider)  # an AuthnRequest is answered once
    return response


@require_safe
def saml_metadata(request, slug):
    """Our service provider's metadata, for the organization's admin to give their IdP."""
    return HttpResponse(saml.sp_metadata(_saml_provider(slug)), content_type="application/samlmetadata+xml")


def _provider(slug, protocol: str | None = None) -> IdentityProvider | None:
    providers = IdentityProvider.objects.select_related("organization").filter(organization__slug=slug, enabled=True)
    return (providers.filter(protocol=protocol) if protocol else providers).first()


def _saml_provider(slug) -> IdentityProvider:
    provider = _provider(slug, Protocol.SAML)
    if provider is None:
        raise Http404("No SAML single sign-on for this organization.")
    return provider


def _sign_in(request, provider: IdentityProvider, identity: VerifiedIdentity):
    try:
        user = complete_sso_sign_in(provider=provider, identity=identity, ip=client_ip(request))
    except SignInRefused as refusal:
        return _refused(request, provider, refusal, subject=identity.subject)
    policy = SignInPolicy.objects.filter(organization_id=provider.organization_id).first() or SignInPolicy()
    start_sso_session(request, organization=provider.organization, user=user, method=provider.protocol,
                      session_minutes=policy.session_minutes)
    return redirect("home")


def _refused(request, provider, refusal: SignInRefused, *, subject: str = ""):
    record_refusal(organization=provider.organization, method=provider.protocol, reason=refusal.reason,
                   ip=client_ip(request), subject=subject, detail=str(refusal.__cause__ or "")[:500])
    return render(request, "identity/sso_refused.html", {"message": str(refusal), "reason": refusal.reason,
                                                          "organization": provider.organization}, status=403)
