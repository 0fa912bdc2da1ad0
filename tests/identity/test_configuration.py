"""An owner configures the organization's identity provider: the client secret is sealed at rest and
never in the audit trail, URLs the server will fetch meet the SSRF guard, and bad input names its
field and changes nothing."""
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError

from audit.actors import Actor
from identity import configuration, secrets
from identity.models import IdentityProvider

from .conftest import events

pytestmark = pytest.mark.django_db
OWNER = Actor("user", None, "olga@acme.example")
MAPPING = {"Console Admins": "admin", "Compliance": "auditor"}


def oidc(org, **changes):
    values = {"issuer": "https://93.184.215.14/oauth2/default/", "client_id": "0oa1", "client_secret": "s3cret",
              "groups_claim": "groups", "role_mapping": MAPPING, **changes}
    return configuration.configure_oidc(organization=org, actor=OWNER, **values)


def test_the_client_secret_is_sealed_kept_when_left_blank_and_never_audited(org):
    provider = oidc(org)
    assert provider.client_secret != "s3cret" and secrets.unseal(provider.client_secret) == "s3cret"
    assert provider.issuer == "https://93.184.215.14/oauth2/default"
    oidc(org, client_secret="", client_id="0oa2")
    assert secrets.unseal(IdentityProvider.objects.get().client_secret) == "s3cret"
    changes = events(org, "console.sign_in_changed")
    assert [c["payload"]["client_secret_changed"] for c in changes] == [True, False]
    assert changes[1]["payload"]["identity_provider"]["before"]["client_id"] == "0oa1"
    assert "s3cret" not in str(changes) and provider.client_secret not in str(changes)


@pytest.mark.parametrize("changes, field", [
    ({"issuer": "http://169.254.169.254/latest/meta-data"}, "issuer"),
    ({"issuer": "https://127.0.0.1:8443/"}, "issuer"),
    ({"issuer": "https://user:pw@idp.example/"}, "issuer"),
    ({"client_id": "  "}, "client_id"),
    ({"client_secret": ""}, "client_secret"),
    ({"role_mapping": {}}, "role_mapping"),
    ({"role_mapping": {"Admins": "superuser"}}, "role_mapping"),
    ({"role_mapping": {f"g{i}": "auditor" for i in range(51)}}, "role_mapping"),
    ({"groups_claim": "grou\x00ps"}, "groups_claim"),
])
def test_bad_input_names_its_field_and_saves_nothing(org, changes, field):
    with pytest.raises(ValidationError) as refused:
        oidc(org, **changes)
    assert field in refused.value.message_dict
    assert not IdentityProvider.objects.exists() and events(org, "console.sign_in_changed") == []


def test_an_internal_identity_provider_is_allowed_by_name(org, settings):
    settings.SSO_ALLOWED_HOSTS = ["localhost"]
    assert oidc(org, issuer="https://localhost:8443/realms/acme").issuer == "https://localhost:8443/realms/acme"


def certificate_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.acme.example")])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_switching_to_saml_keeps_no_oidc_secret_and_checks_the_certificate(org):
    oidc(org)
    with pytest.raises(ValidationError) as refused:
        configuration.configure_saml(organization=org, actor=OWNER, entity_id="http://www.okta.com/exk1",
                                     sso_url="https://93.184.215.14/app/sso/saml", certificate="not a cert",
                                     groups_claim="groups", role_mapping=MAPPING)
    assert "saml_certificate" in refused.value.message_dict
    provider = configuration.configure_saml(organization=org, actor=OWNER, entity_id="http://www.okta.com/exk1",
                                            sso_url="https://93.184.215.14/app/sso/saml",
                                            certificate=certificate_pem(), groups_claim="groups",
                                            role_mapping=MAPPING)
    assert provider.protocol == "saml" and provider.client_secret == "" and provider.issuer == ""
