"""A real OpenID Provider for the SSO tests: panva's oidc-provider (OpenID Certified), run with node
from tools/test-idp, and a browser that signs people in through its development login form.

`npm ci --prefix tools/test-idp` installs it (.ci/run does). Without it the tests skip, except in
CI, where they fail: a green CI must have signed someone in for real.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from django.core.cache import cache
from joserfc.jwk import RSAKey

ROOT = Path(__file__).resolve().parents[2]
TEST_IDP = ROOT / "tools" / "test-idp"
CLIENT_ID, CLIENT_SECRET = "governance-console", "test-idp-client-secret"
REDIRECT_URI = "http://testserver/sso/acme/callback/"  # Django's test client is http://testserver


class TestIdP:
    """One oidc-provider process on a free port of 127.0.0.1, with its people and signing keys in files."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, workdir: Path, redirect_uri: str = REDIRECT_URI):
        self.workdir, self.process, self.redirect_uri = workdir, None, redirect_uri
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.people_file, self.keys_file = workdir / "people.json", workdir / "jwks.json"
        self.people: dict = {}
        self.keys = [_new_key("key-1")]
        self._write()

    def person(self, login: str, *, email: str, groups) -> None:
        """Add or change a person; read by the provider at their next sign-in."""
        self.people[login] = {"email": email, "groups": list(groups)}
        self._write()

    def rotate_keys(self) -> None:
        """Sign with a new key from now on, publishing it beside the old one (a restart, same issuer)."""
        self.keys.insert(0, _new_key(f"key-{len(self.keys) + 1}"))
        self._write()
        self.stop()
        self.start()

    def start(self) -> None:
        env = {**os.environ, "PORT": str(self.port), "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET,
               "REDIRECT_URI": self.redirect_uri, "ACCOUNTS_FILE": str(self.people_file),
               "JWKS_FILE": str(self.keys_file), "NODE_NO_WARNINGS": "1"}
        self.log = open(self.workdir / "idp.log", "ab")
        self.process = subprocess.Popen(["node", str(TEST_IDP / "oidc.mjs")], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the test IdP exited: {(self.workdir / 'idp.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the test IdP did not answer its discovery document within 20 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.log.close()

    def sign_in(self, authorize_url: str, login: str) -> str:
        """Go through the provider's login and consent forms as `login`; the URL it redirects to at the
        end (ours, with code and state), not followed."""
        browser, url, method, form = requests.Session(), authorize_url, "get", None
        for _ in range(12):
            response = browser.request(method, url, data=form, allow_redirects=False, timeout=5)
            if response.is_redirect:
                url, method, form = urljoin(url, response.headers["Location"]), "get", None
                if url.startswith(self.redirect_uri):
                    return url
                continue
            assert response.status_code == 200, (response.status_code, response.text[:500])
            prompt = re.search(r'name="prompt" value="(\w+)"', response.text).group(1)
            method = "post"
            form = {"prompt": prompt, "login": login, "password": "any"} if prompt == "login" else {"prompt": prompt}
        raise AssertionError(f"no redirect back to the console from {url}")

    def _write(self):
        self.people_file.write_text(json.dumps(self.people))
        self.keys_file.write_text(json.dumps({"keys": [key.as_dict(private=True) for key in self.keys]}))


def _new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


def path_of(url: str) -> str:
    """The part of an absolute URL that Django's test client takes."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


@pytest.fixture
def test_idp(tmp_path, settings):
    if not (TEST_IDP / "node_modules" / "oidc-provider").is_dir() or shutil.which("node") is None:
        message = "needs node and `npm ci --prefix tools/test-idp`"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real OIDC provider is missing in CI: {message}")
        pytest.skip(message)
    settings.SSO_ALLOWED_HOSTS = ["127.0.0.1"]  # the test IdP serves plain http on this machine
    cache.clear()  # discovery documents and keys of an earlier test's IdP on the same port
    idp = TestIdP(tmp_path)
    idp.start()
    yield idp
    idp.stop()
