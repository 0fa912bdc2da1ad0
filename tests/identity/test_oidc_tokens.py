"""ID tokens no real IdP would send: a small IdP served from this test (discovery, keys, token
endpoint) answers the code exchange with a token forged here. Each is refused at the callback
with its reason on the page's code and in a `console.sign_in_refused` audit event."""
import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from django.test import Client
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from identity.models import IdentityProvider
from identity.oidc import pending_key
from identity.secrets import seal

from .conftest import events

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]  # IdPs still use it
CLIENT_ID = "governance-console"


class ForgingIdP(ThreadingHTTPServer):
    """Serves its discovery document and `published` keys, and `id_token` from its token endpoint."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.issuer = f"http://127.0.0.1:{self.server_address[1]}"
        self.key = _key("key-1")
        self.published = [self.key]
        self.discovered_issuer = self.issuer
        self.moved_to = ""  # its discovery document redirects there
        self.id_token = ""

    def sign(self, *, key=None, alg="RS256", **claims) -> str:
        now = int(time.time())
        key = key or self.key
        return jwt.encode({"alg": alg, "kid": key.kid},
                          {"iss": self.issuer, "aud": CLIENT_ID, "sub": "00u1", "email": "ada@acme.example",
                           "groups": ["Console Admins"], "iat": now, "exp": now + 300, **claims}, key,
                          algorithms=[alg])


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        idp = self.server
        if self.path == "/.well-known/openid-configuration" and idp.moved_to:
            self.send_response(302)
            self.send_header("Location", idp.moved_to)
            self.end_headers()
        elif self.path == "/.well-known/openid-configuration":
            # It even advertises what must never be accepted.
            self._json({"issuer": idp.discovered_issuer, "authorization_endpoint": f"{idp.issuer}/auth",
                        "token_endpoint": f"{idp.issuer}/token", "jwks_uri": f"{idp.issuer}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"]})
        elif self.path == "/jwks":
            self._json({"keys": [key.as_dict(private=False) for key in idp.published]})
        else:
            self.send_error(404)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._json({"access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": self.server.id_token})

    def _json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _key(kid):
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"}, private=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def idp(settings):
    settings.SSO_ALLOWED_HOSTS = ["127.0.0.1"]  # the test IdP serves plain http on this machine
    cache.clear()  # discovery documents and keys of an earlier test's IdP on the same port
    server = ForgingIdP()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider(org, idp):
    org.email_domains = ["acme.example"]
    org.save(update_fields=["email_domains"])
    return IdentityProvider.objects.create(organization=org, protocol="oidc", issuer=idp.issuer, client_id=CLIENT_ID,
                                           client_secret=seal("secret"), role_mapping={"Console Admins": "admin"})


def answer(idp, forge, extra=""):
    """Start a sign-in, let the IdP answer the code with `forge(nonce)`, and return the callback's response."""
    browser = Client()
    browser.get("/sso/acme/")
    pending = browser.session[pending_key(IdentityProvider.objects.get().organization_id)]
    idp.id_token = forge(pending["nonce"])
    return browser.get(f"/sso/acme/callback/?code=c&state={pending['state']}{extra}")


def unsigned(idp, nonce):
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": CLIENT_ID, "sub": "00u1", "iat": now, "exp": now + 300, "nonce": nonce}
    return f"{_b64(json.dumps({'alg': 'none'}).encode())}.{_b64(json.dumps(claims).encode())}."


def hs256_with_the_public_key(idp, nonce):
    """The algorithm confusion attack: HMAC keyed with the IdP's public key, which anyone can fetch."""
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": CLIENT_ID, "sub": "00u1", "email": "ada@acme.example",
              "groups": ["Console Admins"], "iat": now, "exp": now + 300, "nonce": nonce}
    signing_input = (f"{_b64(json.dumps({'alg': 'HS256', 'kid': idp.key.kid}).encode())}."
                     f"{_b64(json.dumps(claims).encode())}")
    public_pem = idp.key.as_pem(private=False)
    return f"{signing_input}.{_b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"


FORGED = {
    "wrong_issuer": lambda idp, nonce: idp.sign(nonce=nonce, iss="https://idp.globex.example"),
    "wrong_audience": lambda idp, nonce: idp.sign(nonce=nonce, aud="another-client"),
    "wrong_audience, several without azp": lambda idp, nonce: idp.sign(nonce=nonce, aud=[CLIENT_ID, "another"]),
    "expired": lambda idp, nonce: idp.sign(nonce=nonce, iat=int(time.time()) - 900, exp=int(time.time()) - 300),
    "bad_signature": lambda idp, nonce: idp.sign(nonce=nonce, key=_key(idp.key.kid)),  # same kid, another key
    "bad_signature, a kid never published": lambda idp, nonce: idp.sign(nonce=nonce, key=_key("key-9")),
    "alg_not_allowed": unsigned,
    "alg_not_allowed, HS256": hs256_with_the_public_key,
    "nonce_mismatch": lambda idp, nonce: idp.sign(nonce="another sign-in's nonce"),
}


@pytest.mark.parametrize("case", FORGED)
def test_a_forged_or_wrong_id_token_is_refused_and_audited(case, provider, org, idp):
    response = answer(idp, lambda nonce: FORGED[case](idp, nonce))
    reason = case.split(",")[0]
    assert response.status_code == 403 and f"<code>{reason}</code>" in response.content.decode()
    assert [e["payload"]["reason"] for e in events(org, "console.sign_in_refused")] == [reason]


@pytest.mark.parametrize("alg, key", [
    ("RS256", lambda: _key("rsa")),
    ("PS256", lambda: _key("rsa-pss")),
    ("ES256", lambda: ECKey.generate_key("P-256", parameters={"kid": "ec"})),
    ("EdDSA", lambda: OKPKey.generate_key("Ed25519", parameters={"kid": "ed"})),
])
def test_the_same_server_signs_in_with_a_right_token(alg, key, provider, org, idp):
    idp.key = key()
    idp.published = [idp.key]
    response = answer(idp, lambda nonce: idp.sign(nonce=nonce, alg=alg))
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_key_published_after_the_keys_were_cached_is_fetched(provider, org, idp):
    assert answer(idp, lambda nonce: idp.sign(nonce=nonce)).status_code == 302  # key-1 cached
    idp.key = _key("key-2")
    idp.published = [idp.key, *idp.published]
    assert answer(idp, lambda nonce: idp.sign(nonce=nonce)).status_code == 302


def test_an_answer_naming_another_issuer_is_refused(provider, org, idp):
    response = answer(idp, lambda nonce: idp.sign(nonce=nonce), extra="&iss=https%3A%2F%2Fidp.globex.example")
    assert response.status_code == 403
    assert [e["payload"]["reason"] for e in events(org, "console.sign_in_refused")] == ["wrong_issuer"]


def test_a_discovery_document_of_another_issuer_is_refused(provider, org, idp):
    idp.discovered_issuer = "https://idp.globex.example"
    assert Client().get("/sso/acme/").status_code == 403
    assert [e["payload"]["reason"] for e in events(org, "console.sign_in_refused")] == ["wrong_issuer"]


def test_a_redirect_away_from_the_idp_is_not_followed(provider, org, idp):
    idp.moved_to = "https://idp.globex.example/.well-known/openid-configuration"
    assert Client().get("/sso/acme/").status_code == 403
    assert [e["payload"]["reason"] for e in events(org, "console.sign_in_refused")] == ["idp_error"]
