"""A real SAML 2.0 identity provider for the tests: pysaml2's IdP (saml2.server.Server) with its own
key and self-signed certificate, signing with xmlsec1 as a production IdP would."""
from base64 import b64encode
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.s_utils import decode_base64_and_inflate
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.samlp import authn_request_from_string
from saml2.server import Server

from identity.saml import XMLSEC_BINARY


def key_and_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A fresh RSA key and a self-signed certificate for it, as PEM files in `directory`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
                   .sign(key, hashes.SHA256()))
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


class TestIdP:
    """An IdP that signs people in to the service providers whose metadata it is given (`trust`)."""

    __test__ = False

    def __init__(self, directory: Path, *, entity_id: str, name: str = "idp"):
        self.entity_id = entity_id
        self.sso_url = f"{entity_id}/sso/redirect"
        self.key_file, self.cert_file = key_and_certificate(directory, name)
        self.certificate = self.cert_file.read_text()
        self.server = None

    def trust(self, *sp_metadata: str) -> "TestIdP":
        entity_id = self.entity_id
        config = IdPConfig()
        config.load({
            "entityid": entity_id,
            "xmlsec_binary": XMLSEC_BINARY,
            "key_file": str(self.key_file),
            "cert_file": str(self.cert_file),
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                       "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"}},
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            }},
            "metadata": {"inline": list(sp_metadata)},
        })
        self.server = Server(config=config)
        return self

    def answer(self, login_redirect: str, *, subject: str, attributes: dict, sign_assertion: bool = True,
               sign_response: bool = False, audience: str | None = None, destination: str | None = None) -> str:
        """The base64 SAMLResponse the IdP posts back for the AuthnRequest in `login_redirect` (the URL
        our /sso/<slug>/ sent the browser to), optionally wrong in one way."""
        # read, not checked: this IdP answers requests addressed to another IdP too, as an attacker's would
        request = authn_request_from_string(decode_base64_and_inflate(
            parse_qs(urlsplit(login_redirect).query)["SAMLRequest"][0]))
        return self.respond(request.id, sp_entity_id=request.issuer.text, acs=request.assertion_consumer_service_url,
                            subject=subject, attributes=attributes, sign_assertion=sign_assertion,
                            sign_response=sign_response, audience=audience, destination=destination)

    def respond(self, in_response_to: str | None, *, sp_entity_id: str, acs: str, subject: str, attributes: dict,
                sign_assertion=True, sign_response=False, audience=None, destination=None) -> str:
        response = self.server.create_authn_response(
            identity={name: list(values) for name, values in attributes.items()}, in_response_to=in_response_to,
            destination=destination or acs, sp_entity_id=audience or sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=subject),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_assertion=sign_assertion, sign_response=sign_response)
        return b64encode(str(response).encode()).decode()

