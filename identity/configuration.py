"""An organization's identity provider, as its owner configures it on the Settings page.

Every change is audited in its transaction, with the values an auditor needs to know what changed
but never the client secret: the event says only whether a new one was set. The secret is sealed
before it is stored (identity.secrets) and no page or API shows it again.
"""
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Role
from audit import services as audit
from audit.actors import Actor
from audit.models import EventKind
from config import outbound

from . import secrets
from .models import IdentityProvider, Protocol

MAX_MAPPED_GROUPS = 50


def idp_target(url: str, field: str) -> outbound.Target:
    """Where the server may fetch an IdP's URL: a public address (or a host SSO_ALLOWED_HOSTS names),
    over HTTPS in production; raises ValidationError naming `field`."""
    try:
        return outbound.check(url, allowed=settings.SSO_ALLOWED_HOSTS, https_only=settings.SSO_HTTPS_ONLY)
    except outbound.UnresolvedHost as error:
        raise ValidationError({field: f"{error} Check the address."}) from None
    except outbound.RefusedTarget as error:
        raise ValidationError({field: str(error)}) from None


def check_idp_url(url: str, field: str) -> str:
    idp_target(url, field)
    return url


def checked_role_mapping(mapping) -> dict[str, str]:
    """{IdP group: role}: at most MAX_MAPPED_GROUPS groups, each to owner, admin or auditor."""
    if not isinstance(mapping, dict) or not mapping:
        raise ValidationError({"role_mapping": "Map at least one IdP group to a role."})
    if len(mapping) > MAX_MAPPED_GROUPS:
        raise ValidationError({"role_mapping": f"At most {MAX_MAPPED_GROUPS} groups."})
    clean = {}
    for group, role in mapping.items():
        group = str(group).strip()
        if not group or len(group) > 256 or not group.isprintable():
            raise ValidationError({"role_mapping": "Each group is a name of 1 to 256 printable characters."})
        if role not in Role.values:
            raise ValidationError({"role_mapping": f"{group}: the role must be one of {', '.join(Role.values)}."})
        clean[group] = role
    return clean


def checked_certificate(pem: str) -> str:
    try:
        certificate = x509.load_pem_x509_certificate(pem.strip().encode())
    except ValueError:
        raise ValidationError({"saml_certificate": "Paste the IdP's signing certificate in PEM form "
                                                   "(-----BEGIN CERTIFICATE----- ...)."}) from None
    return certificate.public_bytes(Encoding.PEM).decode()


@transaction.atomic
def configure_oidc(*, organization, actor: Actor, issuer: str, client_id: str, client_secret: str | None,
                   groups_claim: str, role_mapping: dict, enabled: bool = True) -> IdentityProvider:
    """Save the organization's OIDC provider; `client_secret` None or empty keeps the stored one."""
    issuer = check_idp_url(issuer.strip().rstrip("/"), "issuer")
    if not client_id.strip():
        raise ValidationError({"client_id": "Enter the client id the IdP gave this application."})
    provider = IdentityProvider.objects.select_for_update().filter(organization=organization).first()
    if provider is None or provider.protocol != Protocol.OIDC:
        if not client_secret:
            raise ValidationError({"client_secret": "Enter the client secret the IdP gave this application."})
    fields = {"protocol": Protocol.OIDC, "issuer": issuer, "client_id": client_id.strip(),
              "groups_claim": _claim(groups_claim), "role_mapping": checked_role_mapping(role_mapping),
              "enabled": enabled, "saml_entity_id": "", "saml_sso_url": "", "saml_certificate": ""}
    if client_secret:
        fields["client_secret"] = secrets.seal(client_secret)
    return _save(organization, actor, provider, fields, secret_changed=bool(client_secret))


@transaction.atomic
def configure_saml(*, organization, actor: Actor, entity_id: str, sso_url: str, certificate: str, groups_claim: str,
                   role_mapping: dict, enabled: bool = True) -> IdentityProvider:
    if not entity_id.strip() or len(entity_id) > 500:
        raise ValidationError({"saml_entity_id": "Enter the IdP's entity id (its issuer), up to 500 characters."})
    fields = {"protocol": Protocol.SAML, "saml_entity_id": entity_id.strip(),
              "saml_sso_url": check_idp_url(sso_url.strip(), "saml_sso_url"),
              "saml_certificate": checked_certificate(certificate), "groups_claim": _claim(groups_claim),
              "role_mapping": checked_role_mapping(role_mapping), "enabled": enabled,
              "issuer": "", "client_id": "", "client_secret": ""}
    provider = IdentityProvider.objects.select_for_update().filter(organization=organization).first()
    return _save(organization, actor, provider, fields, secret_changed=False)


def _claim(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 128 or not name.isprintable():
        raise ValidationError({"groups_claim": "Name the claim or attribute that lists a person's groups "
                                               "(1 to 128 characters), e.g. groups."})
    return name


def _save(organization, actor: Actor, provider, fields: dict, *, secret_changed: bool) -> IdentityProvider:
    before = _state(provider) if provider else None
    if provider is None:
        provider = IdentityProvider(organization=organization)
    for name, value in fields.items():
        setattr(provider, name, value)
    provider.save()
    audit.record(organization=organization, kind=EventKind.CONSOLE_SIGN_IN_CHANGED, actor=actor,
                 payload={"identity_provider": {"before": before, "after": _state(provider)},
                          "client_secret_changed": secret_changed})
    return provider


def _state(provider: IdentityProvider) -> dict:
    """What the audit trail keeps of a provider: everything but the secret."""
    return {"protocol": provider.protocol, "enabled": provider.enabled, "issuer": provider.issuer,
            "client_id": provider.client_id, "saml_entity_id": provider.saml_entity_id,
            "saml_sso_url": provider.saml_sso_url, "groups_claim": provider.groups_claim,
            "role_mapping": provider.role_mapping}
