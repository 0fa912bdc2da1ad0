"""SAML 2.0 sign-in to an organization's console (service-provider initiated), with pysaml2.

The service provider is configured per organization, in memory, from its IdentityProvider row: the
IdP's metadata is written from its entity id, single sign-on URL and signing certificate. We send
an AuthnRequest by HTTP-Redirect and take the response by HTTP-POST at the ACS. A response is
accepted only when its assertion is signed by that certificate, is for us (audience, recipient,
destination), is within its validity window and answers an AuthnRequest this browser started;
what it asserts is then handed to identity.services like any IdP's answer.
"""
import re
from base64 import b64decode
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import quoteattr

from defusedxml import ElementTree
from django.conf import settings
from django.core import signing
from django.urls import reverse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.response import IncorrectlySigned, StatusError, UnsolicitedResponse
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.sigver import MissingKey, SignatureError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from .models import IdentityProvider
from .services import SignInRefused, VerifiedIdentity

XMLSEC_BINARY = "/usr/bin/xmlsec1"
CLOCK_SKEW_SECONDS = 120
REQUEST_COOKIE = "saml_request"  # the AuthnRequest id this browser is waiting an answer to
REQUEST_MAX_AGE = 10 * 60
EMAIL_ATTRIBUTES = ("email", "mail", "urn:oid:0.9.2342.19200300.100.1.3")
NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}

MESSAGES = {
    "unsigned": "Your identity provider's answer was not signed, so it cannot be trusted.",
    "bad_signature": "Your identity provider's answer was not signed with the certificate this organization "
                     "trusts.",
    "wrong_audience": "Your identity provider's answer was meant for another service.",
    "wrong_recipient": "Your identity provider's answer was sent to another address than this console's.",
    "expired": "Your identity provider's answer has expired or is not valid yet. Start again from the sign-in page.",
    "unsolicited": "This console did not ask your identity provider for this answer (or the sign-in took too "
                   "long). Start again from the sign-in page.",
    "idp_error": "Your identity provider did not sign you in.",
}


def sp_entity_id(provider: IdentityProvider) -> str:
    return _absolute("saml-metadata", provider)


def acs_url(provider: IdentityProvider) -> str:
    return _absolute("saml-acs", provider)


def _absolute(name: str, provider: IdentityProvider) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name, args=[provider.organization.slug])


def idp_metadata(provider: IdentityProvider) -> str:
    """The IdP's SAML metadata, written from what the organization's owner entered."""
    certificate = re.sub(r"-----[A-Z ]+-----|\s", "", provider.saml_certificate)
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(provider.saml_entity_id)}>'
        '<md:IDPSSODescriptor WantAuthnRequestsSigned="false" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
        f'<ds:X509Certificate>{certificate}</ds:X509Certificate>'
        '</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>'
        f'<md:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" Location={quoteattr(provider.saml_sso_url)}/>'
        '</md:IDPSSODescriptor></md:EntityDescriptor>')


def sp_config(provider: IdentityProvider) -> SPConfig:
    config = SPConfig()
    config.load({
        "entityid": sp_entity_id(provider),
        "xmlsec_binary": XMLSEC_BINARY,
        "delete_tmpfiles": True,
        "accepted_time_diff": CLOCK_SKEW_SECONDS,
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(acs_url(provider), BINDING_HTTP_POST)]},
            "allow_unsolicited": False,
            "authn_requests_signed": False,
            "want_assertions_signed": True,  # a signed Response alone is not enough: its assertion must be signed
            "want_response_signed": False,
        }},
        "metadata": {"inline": [idp_metadata(provider)]},
    })
    return config


def sp_metadata(provider: IdentityProvider) -> str:
    """Our metadata, for the organization's admin to give their IdP."""
    return create_metadata_string(None, config=sp_config(provider), sign=False).decode()


def authn_request(provider: IdentityProvider) -> tuple[str, str]:
    """(the AuthnRequest's id, the IdP URL that carries it by HTTP-Redirect)."""
    request_id, info = Saml2Client(config=sp_config(provider)).prepare_for_authenticate(
        entityid=provider.saml_entity_id, binding=BINDING_HTTP_REDIRECT)
    return request_id, dict(info["headers"])["Location"]


def remember_request(response, *, request, provider: IdentityProvider, request_id: str) -> None:
    """Bind the AuthnRequest to this browser. A cookie of its own, not the session: the IdP's answer
    is a cross-site POST, to which browsers do not send a SameSite=Lax session cookie."""
    secure = request.is_secure()
    response.set_signed_cookie(REQUEST_COOKIE, request_id, salt=_cookie_salt(provider), max_age=REQUEST_MAX_AGE,
                               path=_cookie_path(provider), httponly=True, secure=secure,
                               samesite="None" if secure else "Lax")


def forget_request(response, *, provider: IdentityProvider) -> None:
    response.delete_cookie(REQUEST_COOKIE, path=_cookie_path(provider))


def pending_request(request, *, provider: IdentityProvider) -> str | None:
    try:
        return request.get_signed_cookie(REQUEST_COOKIE, salt=_cookie_salt(provider), max_age=REQUEST_MAX_AGE)
    except (KeyError, signing.BadSignature):
        return None


def _cookie_salt(provider: IdentityProvider) -> str:
    return f"identity.saml:{provider.organization_id}"


def _cookie_path(provider: IdentityProvider) -> str:
    return reverse("saml-acs", args=[provider.organization.slug])


def verified_identity(provider: IdentityProvider, *, saml_response: str, request_id: str | None) -> VerifiedIdentity:
    """What the IdP asserted in `saml_response` (base64, as posted), once every check passed.
    Raises SignInRefused with the first check that failed."""
    if not request_id:
        raise _refused("unsolicited")
    client = Saml2Client(config=sp_config(provider))
    try:
        response = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST,
                                                       outstanding={request_id: ""},
                                                       conv_info={"entity_id": acs_url(provider)})
    except UnsolicitedResponse:
        raise _refused("unsolicited") from None
    except (ResponseLifetimeExceed, ToEarly):
        raise _refused("expired") from None
    except StatusError:
        raise _refused("idp_error") from None
    except (SignatureError, IncorrectlySigned, MissingKey):
        raise _refused("bad_signature" if _assertion_signed(saml_response) else "unsigned") from None
    except Exception:  # noqa: BLE001 - pysaml2 raises bare Exceptions for audience and subject failures
        raise _refused(_diagnosis(provider, saml_response)) from None
    if response is None or response.assertion is None:  # pysaml2 refused it without saying why
        raise _refused(_diagnosis(provider, saml_response))
    if not response.assertion.signature:
        raise _refused("unsigned")
    if (response.response.destination or acs_url(provider)) != acs_url(provider) or any(
            confirmation.subject_confirmation_data.recipient != acs_url(provider)
            for confirmation in response.assertion.subject.subject_confirmation):
        raise _refused("wrong_recipient")
    return _identity(provider, response)


def _identity(provider: IdentityProvider, response) -> VerifiedIdentity:
    attributes = response.ava or {}
    name_id = response.name_id
    email = next((values[0] for name in EMAIL_ATTRIBUTES if (values := attributes.get(name))), "")
    if not email and name_id.format == NAMEID_FORMAT_EMAILADDRESS:
        email = name_id.text
    conditions = response.assertion.conditions
    valid_until = (_parse_time(conditions.not_on_or_after) if conditions is not None and conditions.not_on_or_after
                   else datetime.now(UTC) + timedelta(hours=1))
    return VerifiedIdentity(issuer=response.issuer() or provider.saml_entity_id, subject=name_id.text.strip(),
                            email=email.strip(), groups=tuple(attributes.get(provider.groups_claim, ())),
                            one_time_value=response.assertion.id,
                            valid_until=valid_until + timedelta(seconds=CLOCK_SKEW_SECONDS))


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)  # Python 3.11 reads the "Z"


def _refused(reason: str) -> SignInRefused:
    return SignInRefused(reason, MESSAGES[reason])


def _document(saml_response: str):
    try:
        return ElementTree.fromstring(b64decode(saml_response, validate=False))
    except Exception:  # noqa: BLE001 - not base64, not XML: nothing to diagnose
        return None


def _assertion_signed(saml_response: str) -> bool:
    document = _document(saml_response)
    return document is not None and document.find(".//saml:Assertion/ds:Signature", NS) is not None


def _diagnosis(provider: IdentityProvider, saml_response: str) -> str:
    """Why pysaml2 refused a response it does not explain: read from the (unverified) document only
    to name the refusal, never to accept anything."""
    document = _document(saml_response)
    if document is None:
        return "idp_error"
    if document.get("Destination", acs_url(provider)) != acs_url(provider) or any(
            data.get("Recipient") != acs_url(provider) for data in document.iterfind(
                ".//saml:SubjectConfirmationData", NS)):
        return "wrong_recipient"
    audiences = [audience.text for audience in document.iterfind(".//saml:Audience", NS)]
    if audiences and sp_entity_id(provider) not in audiences:
        return "wrong_audience"
    if document.find(".//saml:Assertion/ds:Signature", NS) is None:
        return "unsigned"
    return "idp_error"
