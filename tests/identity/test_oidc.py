"""Signing in through a real OpenID Provider (tools/test-idp): the browser goes from /sso/acme/ to the
provider's login and consent forms and back to the callback, which exchanges the code over HTTP and
verifies the ID token against the provider's published keys."""
import pytest
from django.test import Client

from accounts.models import OrgRole
from identity.access import METHOD_KEY, ORGANIZATION_KEY, SSO_ORGANIZATION_KEY
from identity.models import IdentityProvider, SignInPolicy
from identity import oidc
from identity.oidc import pending_key
from identity.secrets import seal

from .conftest import events
from .oidc_provider import CLIENT_ID, CLIENT_SECRET, path_of, test_idp  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(org, test_idp):  # noqa: F811
    org.email_domains = ["acme.example"]
    org.save(update_fields=["email_domains"])
    test_idp.person("ada", email="ada@acme.example", groups=["Console Owners", "Everyone"])
    return IdentityProvider.objects.create(
        organization=org, protocol="oidc", issuer=test_idp.issuer, client_id=CLIENT_ID,
        client_secret=seal(CLIENT_SECRET),
        role_mapping={"Console Owners": "owner", "Console Admins": "admin", "Compliance": "auditor"})


def answer_of(idp, browser: Client, login: str) -> str:
    """The path of the IdP's answer (code and state) for `login`, after /sso/acme/ and its forms."""
    start = browser.get("/sso/acme/")
    assert start.status_code == 302 and start["Location"].startswith(f"{idp.issuer}/auth?")
    assert "code_challenge_method=S256" in start["Location"] and "nonce=" in start["Location"]
    return path_of(idp.sign_in(start["Location"], login))


def refusals(org) -> list[str]:
    return [e["payload"]["reason"] for e in events(org, "console.sign_in_refused")]


def refusal_details(org) -> list[str]:
    return [e["payload"]["detail"] for e in events(org, "console.sign_in_refused")]


def test_an_owner_signs_in_with_the_role_of_their_idp_group(provider, org, test_idp):
    SignInPolicy.objects.create(organization=org, session_minutes=60)
    browser = Client()
    response = browser.get(answer_of(test_idp, browser, "ada"))
    assert response.status_code == 302 and response["Location"] == "/"
    assert OrgRole.objects.get(organization=org, user__email="ada@acme.example").role == "owner"
    session = browser.session
    assert session[METHOD_KEY] == "oidc" and session[ORGANIZATION_KEY] == session[SSO_ORGANIZATION_KEY] == org.pk
    assert 3500 < session.get_expiry_age() <= 3600
    assert browser.get("/console/").status_code == 200  # no one-time code after SSO
    logins = events(org, "console.login")
    assert [(e["payload"]["method"], e["payload"]["subject"]) for e in logins] == [("oidc", "ada")]


def test_a_group_change_at_the_idp_changes_the_role_at_the_next_sign_in(provider, org, test_idp):
    test_idp.person("ada", email="ada@acme.example", groups=["Console Admins"])
    first = Client()
    first.get(answer_of(test_idp, first, "ada"))
    assert OrgRole.objects.get(organization=org, user__email="ada@acme.example").role == "admin"
    test_idp.person("ada", email="ada@acme.example", groups=["Compliance"])
    second = Client()
    assert second.get(answer_of(test_idp, second, "ada")).status_code == 302
    assert OrgRole.objects.get(organization=org, user__email="ada@acme.example").role == "auditor"


def test_someone_in_no_mapped_group_is_refused_and_it_is_audited(provider, org, test_idp):
    test_idp.person("bob", email="bob@acme.example", groups=["Everyone"])
    browser = Client()
    response = browser.get(answer_of(test_idp, browser, "bob"))
    assert response.status_code == 403
    assert "none of your groups gives a role" in response.content.decode()
    assert refusals(org) == ["no_mapped_group"]
    assert "_auth_user_id" not in browser.session


def test_an_answer_with_another_state_is_refused(provider, org, test_idp):
    browser = Client()
    answer = answer_of(test_idp, browser, "ada").replace("state=", "state=x")
    response = browser.get(answer)
    assert response.status_code == 403 and "Start again" in response.content.decode()
    assert refusals(org) == ["state_mismatch"]


def test_a_replayed_answer_is_refused(provider, org, test_idp):
    browser = Client()
    answer = answer_of(test_idp, browser, "ada")
    pending = browser.session[pending_key(org.pk)]
    assert browser.get(answer).status_code == 302
    assert browser.get(answer).status_code == 403  # the sign-in it answered is over
    session = browser.session  # even with the sign-in under way put back, the code is good once
    session[pending_key(org.pk)] = pending
    session.save()
    assert browser.get(answer).status_code == 403
    assert refusals(org) == ["state_mismatch", "idp_error"]


def test_an_id_token_for_another_nonce_is_refused(provider, org, test_idp):
    browser = Client()
    answer = answer_of(test_idp, browser, "ada")
    session = browser.session
    session[pending_key(org.pk)] = {**session[pending_key(org.pk)], "nonce": "another"}
    session.save()
    assert browser.get(answer).status_code == 403
    assert refusals(org) == ["nonce_mismatch"]


def test_a_rotated_signing_key_is_fetched_when_first_seen(provider, org, test_idp, monkeypatch):
    fetches = []
    fetch = oidc.signing_keys
    monkeypatch.setattr(oidc, "signing_keys", lambda uri, refresh=False: fetches.append(refresh) or fetch(
        uri, refresh=refresh))
    browser = Client()
    assert browser.get(answer_of(test_idp, browser, "ada")).status_code == 302  # key-1 known and cached
    test_idp.rotate_keys()
    browser = Client()
    assert browser.get(answer_of(test_idp, browser, "ada")).status_code == 302  # key-2: fetched again
    assert fetches == [False, False, True] and refusals(org) == []


def test_an_idp_error_is_refused(provider, org, test_idp):
    browser = Client()
    browser.get("/sso/acme/")
    state = browser.session[pending_key(org.pk)]["state"]
    response = browser.get(f"/sso/acme/callback/?error=access_denied&state={state}")
    assert response.status_code == 403 and "access_denied" in response.content.decode()
    assert refusals(org) == ["idp_error"]


@pytest.mark.parametrize("setting, says", [("SSO_HTTPS_ONLY", "https://"), ("SSO_ALLOWED_HOSTS", "public address")])
def test_an_idp_over_plain_http_or_at_an_internal_address_is_refused_unless_allowed(provider, org, settings, setting,
                                                                                    says):
    settings.SSO_HTTPS_ONLY, settings.SSO_ALLOWED_HOSTS = (True, ["127.0.0.1"]) if setting == "SSO_HTTPS_ONLY" else (
        False, [])
    response = Client().get("/sso/acme/")
    assert response.status_code == 403
    assert refusals(org) == ["idp_error"] and says in refusal_details(org)[0]


def test_the_sign_in_page_finds_the_idp_by_e_mail_domain_only(provider, org, other_org):
    other_org.email_domains = ["globex.example"]  # an organization without an IdP
    other_org.save(update_fields=["email_domains"])
    browser = Client()
    assert "Sign in with your organization" in browser.get("/login/").content.decode()
    found = browser.post("/sso/", {"email": "someone@acme.example"})
    # a page that moves on by itself (a redirect would be held to the login page's CSP form-action)
    assert found.status_code == 200 and '<meta http-equiv="refresh" content="0; url=/sso/acme/">' in found.content.decode()
    for address in ("someone@globex.example", "someone@sub.acme.example", "someone@nowhere.example"):
        text = browser.post("/sso/", {"email": address}).content.decode()
        assert "no single sign-on for this address" in text and "Globex" not in text, address
    unknown = browser.get("/sso/globex/", follow=True)
    assert "no single sign-on for this address" in unknown.content.decode()
