"""OpenID Connect sign-in (authorization code flow with PKCE S256, state and nonce) through an
organization's IdP, with Authlib: its requests OAuth2Session builds the authorization URL and
exchanges the code, and joserfc (which Authlib 1.9 recommends over its deprecated authlib.jose)
verifies the ID token.

What the libraries leave to the caller is checked here, each with a stable reason code for the
audit trail: the algorithm (asymmetric only; an IdP that advertises "none" or HS256 still gets
refused), the signing key looked up by kid (the JWKS fetched again once for an unknown kid, so
that the IdP may rotate keys), the issuer of the discovery document and of the response (RFC 9207),
the audience and azp, the nonce. What comes after the protocol is identity.services's.

Every URL of the IdP meets the SSRF guard (identity.idp_http): a public address, or a host named
in SSO_ALLOWED_HOSTS, over HTTPS in production; 5 s at most; no redirect followed.
"""
from datetime import UTC, datetime

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils.crypto import constant_time_compare, salted_hmac
from joserfc import jws, jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

from .configuration import check_idp_url
from .idp_http import TIMEOUT_SECONDS, fetch_json
from .models import IdentityProvider
from .secrets import SecretUnreadable, unseal
from .services import SignInRefused, VerifiedIdentity

CACHE_SECONDS = 300  # discovery documents and key sets; an unknown kid refetches the key set at once
CLOCK_SKEW_SECONDS = 60
# Asymmetric only: with HS* the IdP's client secret (or, in the classic confusion, its public key) signs.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
                      "Ed25519")
WANTED_SCOPES = ("openid", "email", "profile", "groups")  # those the IdP lists as supported are asked for


def pending_key(organization_id) -> str:
    """The session key of a sign-in under way: one per organization, so two tabs for two
    organizations do not overwrite each other's state."""
    return f"oidc_pending:{organization_id}"


def authorization_url(session, *, provider: IdentityProvider, redirect_uri: str) -> str:
    """Where to send the browser to sign in; the state, nonce and PKCE verifier stay in `session`."""
    metadata = discovery(provider)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    supported = metadata.get("scopes_supported") or WANTED_SCOPES[:2]
    client = OAuth2Session(provider.client_id, redirect_uri=redirect_uri, code_challenge_method="S256",
                           scope=" ".join(s for s in WANTED_SCOPES if s in supported or s == "openid"))
    url, _ = client.create_authorization_url(metadata["authorization_endpoint"], state=state, code_verifier=verifier,
                                             nonce=nonce)
    session[pending_key(provider.organization_id)] = {"state": state, "nonce": nonce, "code_verifier": verifier,
                                                      "redirect_uri": redirect_uri}
    return url


def verified_identity(session, *, provider: IdentityProvider, params) -> VerifiedIdentity:
    """The IdP's answer at the redirect URI (`params`: its query), checked and exchanged for a
    verified ID token. The sign-in under way is taken out of `session` first: an answer is good once."""
    pending = session.pop(pending_key(provider.organization_id), None)
    if pending is None or not constant_time_compare(params.get("state", ""), pending["state"]):
        raise SignInRefused("state_mismatch", "This sign-in answer does not belong to a sign-in started in this "
                                              "browser, or it was used already. Start again from the sign-in page.")
    metadata = discovery(provider)
    if params.get("error"):
        raise SignInRefused("idp_error", f"Your identity provider refused the sign-in "
                                         f"({params['error'][:60]}). Try again, or ask your administrator.")
    if "iss" in params and params["iss"] != provider.issuer:  # RFC 9207: an answer from another IdP (mix-up)
        raise SignInRefused("wrong_issuer", _WRONG_ISSUER)
    try:
        client = OAuth2Session(provider.client_id, unseal(provider.client_secret),
                               redirect_uri=pending["redirect_uri"], code_challenge_method="S256")
        token = client.fetch_token(metadata["token_endpoint"], grant_type="authorization_code",
                                   code=params.get("code", ""), code_verifier=pending["code_verifier"],
                                   timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except SecretUnreadable as error:
        raise SignInRefused("idp_error", str(error)) from None
    except (OAuthError, requests.RequestException, ValueError) as error:
        raise SignInRefused("idp_error", _IDP_UNREACHABLE) from error
    if not token.get("id_token"):
        raise SignInRefused("idp_error", _IDP_UNREACHABLE)
    claims = validate_id_token(token["id_token"], provider=provider, metadata=metadata, nonce=pending["nonce"])
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    groups = claims.get(provider.groups_claim) or ()
    if not isinstance(groups, (str, list, tuple)):  # an IdP's odd claim is no group, not an error
        groups = ()
    return VerifiedIdentity(
        issuer=claims["iss"], subject=claims["sub"],
        # An address the IdP says it has not verified proves nothing about the organization's domain.
        email="" if claims.get("email_verified", True) is not True else email,
        groups=(groups,) if isinstance(groups, str) else tuple(g for g in groups if isinstance(g, str)),
        one_time_value=pending["nonce"], valid_until=datetime.fromtimestamp(claims["exp"], UTC),
        display_name=str(claims.get("name", ""))[:150])


def validate_id_token(id_token: str, *, provider: IdentityProvider, metadata: dict, nonce: str) -> dict:
    """The claims of an ID token whose signature, algorithm, issuer, audience, times and nonce are right."""
    try:
        header = jws.extract_compact(id_token.encode()).protected
    except (JoseError, ValueError) as error:
        raise SignInRefused("bad_signature", _BAD_TOKEN) from error
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise SignInRefused("alg_not_allowed", _BAD_TOKEN)
    keys = signing_keys(metadata["jwks_uri"])
    if not _has_key(keys, header):  # the IdP may have rotated its keys since we fetched them
        keys = signing_keys(metadata["jwks_uri"], refresh=True)
    try:
        token = jwt.decode(id_token, keys, algorithms=[header["alg"]])
    except (JoseError, ValueError) as error:
        raise SignInRefused("bad_signature", _BAD_TOKEN) from error
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=CLOCK_SKEW_SECONDS, iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": provider.client_id}, sub={"essential": True},
        exp={"essential": True}, iat={"essential": True})
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise SignInRefused("expired", "The answer from your identity provider has expired. Check that this "
                                       "computer's clock is right, then sign in again.") from None
    except ClaimError as error:
        reason = {"iss": "wrong_issuer", "aud": "wrong_audience", "exp": "expired"}.get(error.claim, "bad_token")
        raise SignInRefused(reason, _WRONG_ISSUER if reason == "wrong_issuer" else _BAD_TOKEN) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != provider.client_id:  # OIDC Core 3.1.3.7, step 5
        raise SignInRefused("wrong_audience", _BAD_TOKEN)
    if not constant_time_compare(str(claims.get("nonce", "")), nonce):
        raise SignInRefused("nonce_mismatch", "This sign-in answer was made for another sign-in attempt. Start "
                                              "again from the sign-in page.")
    return claims


def discovery(provider: IdentityProvider) -> dict:
    """The IdP's discovery document, cached briefly; its issuer must be the one configured."""
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    metadata = _cached_json(url, refresh=False)
    if metadata.get("issuer") != provider.issuer:
        raise SignInRefused("wrong_issuer", _WRONG_ISSUER)
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        _check_url(metadata.get(endpoint))
    return metadata


def signing_keys(jwks_uri: str, *, refresh: bool = False) -> KeySet:
    try:
        return KeySet.import_key_set(_cached_json(jwks_uri, refresh=refresh))
    except (JoseError, ValueError, TypeError) as error:
        raise SignInRefused("idp_error", _IDP_UNREACHABLE) from error


def _has_key(keys: KeySet, header: dict) -> bool:
    kid = header.get("kid")
    return any(key.kid == kid for key in keys) if kid else bool(keys.keys)


def _cached_json(url: str, *, refresh: bool) -> dict:
    key = "identity.oidc:" + salted_hmac("identity.oidc", url).hexdigest()
    if not refresh and (document := cache.get(key)) is not None:
        return document
    document, error = fetch_json(url)
    if error:
        raise SignInRefused("idp_error", _IDP_UNREACHABLE) from IdPUnreachable(f"{url}: {error}")
    cache.set(key, document, CACHE_SECONDS)
    return document


class IdPUnreachable(Exception):
    """Why the IdP could not be read, in words (kept in the refusal's audit event)."""


def _check_url(url) -> None:
    try:
        check_idp_url(url if isinstance(url, str) else "", "url")
    except ValidationError as error:
        raise SignInRefused("idp_error", _IDP_UNREACHABLE) from IdPUnreachable(f"{url}: {' '.join(error.messages)}")


_IDP_UNREACHABLE = ("The console could not complete the sign-in with your organization's identity provider. "
                    "Try again in a minute; if it keeps failing, ask your administrator to check the single "
                    "sign-on settings.")
_WRONG_ISSUER = ("The sign-in answer did not come from your organization's identity provider. Start again from "
                 "the sign-in page; if it happens again, tell your administrator.")
_BAD_TOKEN = ("The sign-in answer from your identity provider could not be verified, so the console did not "
              "trust it. Start again from the sign-in page; if it happens again, tell your administrator.")
