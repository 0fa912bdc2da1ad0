from base64 import b32encode

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import WRITER_ROLES, OrgRole

from . import invitations
from . import mfa as mfa_devices
from . import services
from .access import CODE_ENROLLED_KEY, ORGANIZATION_KEY, access_for_session
from .forms import SingleSignOnForm, ThrottledAuthenticationForm
from .signals import client_ip


class BadFormIs400:
    """A form sent back with its errors answers 400, as every other form of the console does."""

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class SignInView(BadFormIs400, auth_views.LoginView):
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


@require_http_methods(["GET", "HEAD", "POST"])
def invitation(request, token: str):
    """The page an invitation's link opens: choose a password (a new user) or, signed in as the invited
    address, accept. Then signed in, in the inviting organization; owners and admins go on to enrol TOTP."""
    found = invitations.find(token)
    if found is None:
        raise Http404
    user = request.user if request.user.is_authenticated else None
    refused = invitations.refusal(found)
    if refused is None and user is not None and not invitations.is_invitee(user, found):
        refused = (f"This invitation is for {found.email}, and you are signed in as {user.get_username()}. "
                   f"Sign out, then open the link again.")
    elif refused is None and user is None and invitations.existing_user(found.email) is not None:
        refused = f"A console user {found.email} exists already: sign in as {found.email} first, then open the link again."
    form = None
    if refused is None and user is None:
        form = SetPasswordForm(get_user_model()(username=found.email, email=found.email),
                               request.POST if request.method == "POST" else None)
    if request.method == "POST" and refused is None and (form is None or form.is_valid()):
        try:
            user = invitations.accept(token=token, user=user,
                                      password=form.cleaned_data["new_password1"] if form else None)
        except invitations.InvitationRefused as error:
            refused = str(error)
        else:
            if not request.user.is_authenticated:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[ORGANIZATION_KEY] = found.organization_id
            return redirect("mfa" if found.role in WRITER_ROLES else "home")
    status = 200
    if refused is not None:
        status = 410 if invitations.refusal(found) else 400 if request.method == "POST" else 200
    elif form is not None and form.errors:
        status = 400
    return render(request, "identity/invitation.html", {"invitation": found, "refused": refused, "form": form},
                  status=status)


# Password reset by e-mail: Django's views, their links built on SITE_URL (never the request's Host
# header), and a completed reset audited. Django mails no link to a user without a usable password,
# so people who sign in only through an IdP cannot be given a password this way.
class PasswordResetView(BadFormIs400, auth_views.PasswordResetView):
    template_name = "identity/password_reset/form.html"
    email_template_name = "identity/password_reset/email.txt"
    subject_template_name = "identity/password_reset/subject.txt"
    extra_email_context = {"site_url": settings.SITE_URL.rstrip("/")}
    success_url = reverse_lazy("password-reset-done")
    http_method_names = ["get", "head", "post"]  # not Django's PUT-as-POST


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "identity/password_reset/done.html"
    http_method_names = ["get", "head"]


class PasswordResetConfirmView(BadFormIs400, auth_views.PasswordResetConfirmView):
    template_name = "identity/password_reset/confirm.html"
    success_url = reverse_lazy("password-reset-complete")
    http_method_names = ["get", "head", "post"]

    def dispatch(self, request, *args, **kwargs):
        # Django answers a broken link before looking at the method: refuse the method first.
        if request.method.lower() not in self.http_method_names:
            return self.http_method_not_allowed(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        services.reset_password(form=form, ip=client_ip(self.request))
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "identity/password_reset/complete.html"
    http_method_names = ["get", "head"]
