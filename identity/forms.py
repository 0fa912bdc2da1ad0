from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts.models import email_domain

from . import throttle
from .models import IdentityProvider


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing for a while after repeated failures (see `identity.throttle`)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-in attempts for this login from your address. "
                     "Wait %(minutes)d minutes, then try again.",
    }

    def clean(self):
        username = self.data.get("username", "")
        address = throttle.client_address(self.request)
        if username and throttle.is_locked(username, address):
            raise ValidationError(self.error_messages["throttled"], code="throttled",
                                  params={"minutes": throttle.LOCKOUT_SECONDS // 60})
        try:
            cleaned = super().clean()
        except ValidationError:
            if username:
                throttle.record_failure(username, address)
            raise
        throttle.clear(username, address)
        return cleaned


class SingleSignOnForm(forms.Form):
    """A work e-mail address whose domain is, exactly, one of an organization's domains, for an
    organization with an enabled IdP (OIDC or SAML). Any other address gets the same answer, so that the form
    tells nobody which organizations exist."""

    NO_SINGLE_SIGN_ON = "There is no single sign-on for this address. Sign in with your user name and password."

    email = forms.EmailField(label="Work e-mail address", max_length=254)

    def clean_email(self):
        email = self.cleaned_data["email"]
        try:
            domain = email_domain(email.rpartition("@")[2])
        except ValidationError:
            raise ValidationError(self.NO_SINGLE_SIGN_ON, code="no_sso") from None
        providers = [provider for provider in IdentityProvider.objects.select_related("organization")
                     .filter(enabled=True) if domain in provider.organization.email_domains]
        if len(providers) != 1:
            raise ValidationError(self.NO_SINGLE_SIGN_ON, code="no_sso")
        self.provider = providers[0]
        return email
