"""The Settings page's "Test connection": fetch what the console will need from the IdP at sign-in
and say in words what is wrong, before anyone is locked out by it.

For OIDC: the discovery document (its issuer exactly the one configured, the endpoints, the code
flow, PKCE with S256, an asymmetric ID-token algorithm, the groups claim) and the JWKS (at least one
signing key). For SAML: the signing certificate's dates and the SSO URL. Every URL meets the SSRF
guard first, redirects are not followed, and each request waits 5 seconds at most (idp_http).
"""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from django.core.exceptions import ValidationError

from .configuration import check_idp_url
from .idp_http import fetch_json
from .models import IdentityProvider, Protocol

ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warning" or "error"
    text: str


def check_connection(provider: IdentityProvider) -> list[Finding]:
    if provider.protocol == Protocol.OIDC:
        return _oidc(provider)
    return _saml(provider)


def passed(findings: list[Finding]) -> bool:
    return not any(f.level == "error" for f in findings)


def _oidc(provider: IdentityProvider) -> list[Finding]:
    found = []
    url = f"{provider.issuer.rstrip('/')}/.well-known/openid-configuration"
    document, error = fetch_json(url)
    if error:
        return [Finding("error", f"The discovery document at {url} could not be read: {error}")]
    found.append(Finding("ok", f"Read the discovery document at {url}."))
    if document.get("issuer") != provider.issuer:
        found.append(Finding("error", f"The IdP calls itself \"{document.get('issuer')}\", not \"{provider.issuer}\": "
                                      f"enter its issuer exactly as it writes it (a trailing slash counts)."))
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(endpoint), str):
            found.append(Finding("error", f"The discovery document has no {endpoint}."))
    if "code" not in document.get("response_types_supported", []):
        found.append(Finding("error", "The IdP does not offer the authorization-code flow (response type "
                                      "\"code\"), which the console uses."))
    if "S256" not in document.get("code_challenge_methods_supported", ["S256"]):
        found.append(Finding("error", "The IdP does not accept PKCE with S256, which the console sends."))
    algorithms = set(document.get("id_token_signing_alg_values_supported", []))
    if not algorithms & ASYMMETRIC:
        found.append(Finding("error", f"The IdP signs ID tokens only with {', '.join(sorted(algorithms)) or 'nothing'}; "
                                      f"the console accepts public-key signatures only (RS256, ES256, EdDSA...)."))
    claims = document.get("claims_supported")
    if isinstance(claims, list) and provider.groups_claim not in claims:
        found.append(Finding("warning", f"The IdP does not list a \"{provider.groups_claim}\" claim: add a groups "
                                        f"claim to the application's ID token (Okta: Sign On → groups claim filter; "
                                        f"Entra ID: Token configuration → groups claim), or nobody gets a role."))
    if isinstance(document.get("jwks_uri"), str):
        found.extend(_jwks(document["jwks_uri"]))
    return found


def _jwks(url: str) -> list[Finding]:
    keys, error = fetch_json(url)
    if error:
        return [Finding("error", f"The signing keys at {url} could not be read: {error}")]
    signing = [k for k in keys.get("keys", []) if isinstance(k, dict) and k.get("kty") in ("RSA", "EC", "OKP")
               and k.get("use", "sig") == "sig"]
    if not signing:
        return [Finding("error", f"The key set at {url} holds no public signing key (RSA, EC or OKP).")]
    return [Finding("ok", f"Read {len(signing)} signing key{'s' if len(signing) != 1 else ''} at {url}.")]


def _saml(provider: IdentityProvider) -> list[Finding]:
    found = []
    try:
        check_idp_url(provider.saml_sso_url, "saml_sso_url")
        found.append(Finding("ok", "The single sign-on URL is a public address the browser can be sent to."))
    except ValidationError as error:
        found.append(Finding("error", f"The single sign-on URL: {' '.join(error.messages)}"))
    try:
        certificate = x509.load_pem_x509_certificate(provider.saml_certificate.encode())
    except ValueError:
        return [*found, Finding("error", "The signing certificate is not a PEM certificate.")]
    now = datetime.now(timezone.utc)
    until = certificate.not_valid_after_utc
    if until <= now:
        found.append(Finding("error", f"The IdP's signing certificate expired on {until:%Y-%m-%d}: paste the new one."))
    elif until - now < timedelta(days=30):
        found.append(Finding("warning", f"The IdP's signing certificate expires on {until:%Y-%m-%d}: "
                                        f"paste the new one when the IdP rolls it over."))
    else:
        found.append(Finding("ok", f"The signing certificate is valid until {until:%Y-%m-%d}."))
    return found
