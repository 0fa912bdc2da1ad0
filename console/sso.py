"""The Single sign-on page: the organization's identity provider, which every member reads and only
owners change, with the addresses to give the IdP and a "Test connection" button."""
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.models import Role
from audit.actors import user_actor
from identity import configuration
from identity.connection_test import check_connection, passed
from identity.models import IdentityProvider, Protocol

from .access import console_view, page_context

MAPPING_HELP = ("One per line: the IdP group's name, \"=\", then owner, admin or auditor. For example "
                "\"GovConsole Admins = admin\". Someone in several mapped groups gets the highest role; someone "
                "in none is refused.")


class IdentityProviderForm(forms.Form):
    protocol = forms.ChoiceField(choices=Protocol.choices, widget=forms.RadioSelect, initial=Protocol.OIDC)
    issuer = forms.CharField(required=False, max_length=500, label="Issuer (OIDC)",
                             help_text="e.g. https://acme.okta.com/oauth2/default or "
                                       "https://login.microsoftonline.com/<tenant id>/v2.0")
    client_id = forms.CharField(required=False, max_length=255, label="Client id (OIDC)")
    client_secret = forms.CharField(required=False, max_length=1000, label="Client secret (OIDC)",
                                    widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                                    help_text="Stored encrypted and never shown again; leave blank to keep the "
                                              "stored one.")
    saml_entity_id = forms.CharField(required=False, max_length=500, label="IdP entity id (SAML)")
    saml_sso_url = forms.CharField(required=False, max_length=500, label="IdP single sign-on URL (SAML)")
    saml_certificate = forms.CharField(required=False, max_length=20_000, label="IdP signing certificate (SAML)",
                                       widget=forms.Textarea(attrs={"rows": 4}), help_text="PEM")
    groups_claim = forms.CharField(max_length=128, initial="groups", label="Groups claim or attribute")
    role_mapping = forms.CharField(max_length=20_000, widget=forms.Textarea(attrs={"rows": 4}),
                                   label="Groups and roles", help_text=MAPPING_HELP)
    enabled = forms.BooleanField(required=False, initial=True, label="Sign-in through this IdP is on")

    def clean_role_mapping(self):
        mapping = {}
        for number, line in enumerate(self.cleaned_data["role_mapping"].splitlines(), 1):
            if not line.strip():
                continue
            group, equals, role = line.rpartition("=")
            if not equals or not group.strip():
                raise ValidationError(f"Line {number}: write the group, \"=\", then the role.")
            mapping[group.strip()] = role.strip().lower()
        return mapping

    @classmethod
    def of(cls, provider: IdentityProvider | None):
        if provider is None:
            return cls()
        return cls(initial={
            "protocol": provider.protocol, "issuer": provider.issuer, "client_id": provider.client_id,
            "saml_entity_id": provider.saml_entity_id, "saml_sso_url": provider.saml_sso_url,
            "saml_certificate": provider.saml_certificate, "groups_claim": provider.groups_claim,
            "enabled": provider.enabled,
            "role_mapping": "\n".join(f"{group} = {role}" for group, role in provider.role_mapping.items())})

    def save(self, *, organization, actor) -> IdentityProvider:
        data = self.cleaned_data
        common = {"organization": organization, "actor": actor, "groups_claim": data["groups_claim"],
                  "role_mapping": data["role_mapping"], "enabled": data["enabled"]}
        if data["protocol"] == Protocol.OIDC:
            return configuration.configure_oidc(issuer=data["issuer"], client_id=data["client_id"],
                                                client_secret=data["client_secret"], **common)
        return configuration.configure_saml(entity_id=data["saml_entity_id"], sso_url=data["saml_sso_url"],
                                            certificate=data["saml_certificate"], **common)


@require_http_methods(["GET", "POST"])
@console_view
def single_sign_on(request):
    organization = request.organization
    is_owner = request.org_role.role == Role.OWNER
    provider = IdentityProvider.objects.filter(organization=organization).first()
    form, status, findings = IdentityProviderForm.of(provider), 200, None
    if request.method == "POST":
        if not is_owner:
            raise PermissionDenied("Only the organization's owners change its sign-in.")
        if request.POST.get("action") == "test":
            if provider is None:
                messages.error(request, "Save the identity provider first, then test it.")
                return redirect("console:sso")
            findings = check_connection(provider)
            status = 200 if passed(findings) else 400
        else:
            form = IdentityProviderForm(request.POST)
            if form.is_valid():
                try:
                    form.save(organization=organization, actor=user_actor(request.user))
                except ValidationError as error:
                    for field, errors in error.message_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    messages.success(request, "Saved. Use \"Test connection\" to check what the IdP answers.")
                    return redirect("console:sso")
            status = 400
    return render(request, "console/sso.html", page_context(
        request, "settings", form=form, provider=provider, is_owner=is_owner, findings=findings,
        addresses=idp_addresses(organization)), status=status)


def idp_addresses(organization) -> dict[str, str]:
    """What the IdP's administrator enters on their side: where it sends people back."""
    base = settings.SITE_URL.rstrip("/")
    return {name: base + reverse(route, args=[organization.slug]) for name, route in (
        ("sign_in_url", "sso-start"), ("oidc_redirect_uri", "sso-callback"), ("saml_acs_url", "saml-acs"),
        ("saml_entity_id", "saml-metadata"))}
