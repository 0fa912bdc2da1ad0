"""The Settings page's "Test connection" reads the IdP's discovery document and keys over real HTTP
and says in words what would break a sign-in."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from identity.connection_test import check_connection, passed
from identity.models import IdentityProvider

pytestmark = pytest.mark.django_db
KEY = {"kty": "RSA", "use": "sig", "kid": "k1", "n": "sXch", "e": "AQAB"}


@pytest.fixture
def idp(settings):
    """A small HTTP server answering what `routes` says: {path: (status, body, headers)}."""
    routes = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body, headers = routes.get(self.path, (404, "{}", {}))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body.encode() if isinstance(body, str) else json.dumps(body).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SSO_ALLOWED_HOSTS = ["127.0.0.1"]
    base = f"http://127.0.0.1:{server.server_port}"
    yield base, routes
    server.shutdown()


def discovery(base, **changes):
    return {"issuer": base, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks", "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"], "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "email", "groups"], **changes}


def provider_at(org, issuer):
    return IdentityProvider(organization=org, protocol="oidc", issuer=issuer, client_id="c", groups_claim="groups")


def texts(findings, level):
    return " ".join(f.text for f in findings if f.level == level)


def test_a_well_configured_provider_passes(org, idp):
    base, routes = idp
    routes["/.well-known/openid-configuration"] = (200, discovery(base), {})
    routes["/jwks"] = (200, {"keys": [KEY]}, {})
    findings = check_connection(provider_at(org, base))
    assert passed(findings) and "Read 1 signing key" in texts(findings, "ok")


@pytest.mark.parametrize("document, jwks, says", [
    ({"issuer": "https://other.example"}, {"keys": [KEY]}, "calls itself"),
    ({"id_token_signing_alg_values_supported": ["HS256", "none"]}, {"keys": [KEY]}, "public-key signatures only"),
    ({"response_types_supported": ["id_token"]}, {"keys": [KEY]}, "authorization-code flow"),
    ({"code_challenge_methods_supported": ["plain"]}, {"keys": [KEY]}, "PKCE with S256"),
    ({}, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "no public signing key"),
    ({}, "<html>", "not JSON"),
])
def test_what_would_break_a_sign_in_is_said_in_words(org, idp, document, jwks, says):
    base, routes = idp
    routes["/.well-known/openid-configuration"] = (200, discovery(base, **document), {})
    routes["/jwks"] = (200, jwks, {})
    findings = check_connection(provider_at(org, base))
    assert not passed(findings) and says in texts(findings, "error")


def test_a_missing_groups_claim_is_a_warning(org, idp):
    base, routes = idp
    routes["/.well-known/openid-configuration"] = (200, discovery(base, claims_supported=["sub"]), {})
    routes["/jwks"] = (200, {"keys": [KEY]}, {})
    findings = check_connection(provider_at(org, base))
    assert passed(findings) and "groups claim" in texts(findings, "warning")


def test_redirects_are_not_followed_and_refusals_are_named(org, idp, settings):
    base, routes = idp
    routes["/.well-known/openid-configuration"] = (302, "", {"Location": "http://169.254.169.254/"})
    assert "redirect" in texts(check_connection(provider_at(org, base)), "error")
    routes.clear()
    assert "HTTP 404" in texts(check_connection(provider_at(org, base)), "error")
    settings.SSO_ALLOWED_HOSTS = []
    assert "public address" in texts(check_connection(provider_at(org, base)), "error")


def test_a_provider_that_drips_its_answer_is_given_up_on_in_seconds(org, settings):
    class Dripping(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            for _ in range(40):  # 20 s of one byte every half second
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.5)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SSO_ALLOWED_HOSTS = ["127.0.0.1"]
    started = time.monotonic()
    findings = check_connection(provider_at(org, f"http://127.0.0.1:{server.server_port}"))
    assert time.monotonic() - started < 8 and "no complete answer within 5 seconds" in texts(findings, "error")
    server.shutdown()


def test_an_unreachable_provider_is_said_so(org, settings):
    settings.SSO_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert "connection failed" in texts(check_connection(provider_at(org, f"http://127.0.0.1:{port}")), "error")
