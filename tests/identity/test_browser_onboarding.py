"""From a shell command to a working console, in a real browser (Debian's chromium) against a real
OpenID Provider: `create_org --owner-email` invites the first owner, who sets a password and a
one-time code, connects the organization's IdP and invites an auditor; a security lead signs in
through the IdP as an owner by group; the auditor signs in with a password and a one-time code; and
an admin moved to another group at the IdP is an auditor at their next sign-in. The screenshots in
docs/screenshots/ come from here."""
from base64 import b32decode
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django_otp.oath import totp

from accounts.models import Organization, OrgRole

from ..console.conftest import append_only_rows_cleared  # noqa: F401  (a fixture)
from ..console.test_browser import Browser, chromium  # noqa: F401  (a fixture)
from .conftest import events
from .oidc_provider import CLIENT_ID, CLIENT_SECRET, TEST_IDP, TestIdP

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
PASSWORD = "a long and unusual passphrase 42"
MAPPING = "GovConsole Owners = owner\nGovConsole Admins = admin\nGovConsole Auditors = auditor"


@pytest.fixture
def idp(tmp_path, live_server, settings):
    assert (TEST_IDP / "node_modules" / "oidc-provider").is_dir(), "npm ci --prefix tools/test-idp"
    settings.SITE_URL = live_server.url
    settings.SSO_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    provider = TestIdP(tmp_path, redirect_uri=f"{live_server.url}/sso/acme/callback/")
    provider.person("ada", email="ada@acme.example", groups=["GovConsole Owners", "Everyone"])
    provider.person("bob", email="bob@acme.example", groups=["GovConsole Admins"])
    provider.start()
    yield provider
    provider.stop()


def tab(chromium, live_server):  # noqa: F811
    return Browser(chromium, live_server)


def enter_code(page, key: bytes, *, next_step: bool = False):
    """Type the code an authenticator app shows (or the next one: a code is good once)."""
    page.fill("input[name=code]", f"{totp(key, drift=1 if next_step else 0):06d}")
    page.click("form button[type=submit] >> nth=0")
    page.wait_for_load_state("networkidle")


def accept_invitation(browser, link: str, *, shot: str | None = None):
    page = browser.page
    page.goto(link)
    if shot:
        browser.shoot(shot)
    page.fill("input[name=new_password1]", PASSWORD)
    page.fill("input[name=new_password2]", PASSWORD)
    page.click("form button[type=submit] >> nth=0")
    page.wait_for_load_state("networkidle")
    return page


def enrol(browser, *, shot: str | None = None) -> bytes:
    page = browser.page
    assert "/sign-in/code/" in page.url
    if shot:
        browser.shoot(shot)
    key = b32decode(page.locator("#totp-secret").inner_text())
    enter_code(page, key)
    return key


def sign_in_through_idp(browser, email: str, login: str, *, shot: str | None = None):
    page = browser.open("/login/")
    page.fill("#sso input[name=email]", email)
    if shot:
        browser.shoot(shot)
    page.click("#sso button[type=submit]")
    page.wait_for_selector("input[name=login]")  # the IdP's page, after ours moved on by itself
    page.fill("input[name=login]", login)  # the test IdP's own sign-in form: any password
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/interaction/" in page.url:  # its consent step
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
    return page


def role_shown(page) -> str:
    return page.locator(".session .role").text_content().strip()


def test_an_organization_goes_from_a_shell_command_to_sso_roles_invitations_and_codes(
        append_only_rows_cleared, eager_celery, chromium, live_server, idp):  # noqa: F811
    # the operator creates the organization and invites its first owner
    out = StringIO()
    call_command("create_org", slug="acme", name="Acme", email_domains=["acme.example"],
                 owner_email="olga@acme.example", stdout=out)
    link = out.getvalue().strip().splitlines()[-1]
    assert link.startswith(f"{live_server.url}/invitations/") and mail.outbox[0].to == ["olga@acme.example"]

    # Olga accepts: a password, then the one-time code every owner who signs in with a password needs
    olga = tab(chromium, live_server)
    accept_invitation(olga, link, shot="invitation")
    olga_key = enrol(olga, shot="totp-enrol")
    assert olga.page.url.endswith("/console/") and role_shown(olga.page) == "Owner"

    # she connects the organization's IdP and checks what it answers
    page = olga.open("/console/settings/single-sign-on/")
    page.check("input[name=protocol][value=oidc]")
    page.fill("input[name=issuer]", idp.issuer)
    page.fill("input[name=client_id]", CLIENT_ID)
    page.fill("input[name=client_secret]", CLIENT_SECRET)
    page.fill("textarea[name=role_mapping]", MAPPING)
    page.click("form.panel button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.click("button:has-text('Test connection')")
    page.wait_for_load_state("networkidle")
    assert page.locator(".finding-error").count() == 0 and page.locator(".finding-ok").count() >= 2
    olga.shoot("sso-settings")

    # and invites an auditor
    page = olga.open("/console/people/")
    page.fill("input[name=email]", "carl@acme.example")
    page.select_option("form:has(input[name=email]) select[name=role]", "auditor")
    page.click("button:has-text('Send the invitation')")
    page.wait_for_load_state("networkidle")
    carl_link = page.locator("#invitation-link").inner_text()

    # Ada, the security lead, signs in through the IdP: an owner by her group, no password here
    ada = tab(chromium, live_server)
    sign_in_through_idp(ada, "ada@acme.example", "ada", shot="sso-login")
    assert ada.page.url.endswith("/console/") and role_shown(ada.page) == "Owner"

    # Carl accepts with a password, turns one-time codes on, and is asked for one at his next sign-in
    carl = tab(chromium, live_server)
    accept_invitation(carl, carl_link)
    carl.open("/sign-in/code/")
    carl_key = enrol(carl)
    carl.page.click("button:has-text('Sign out')")
    carl.page.wait_for_load_state("networkidle")
    page = carl.open("/login/")
    page.fill("input[name=username]", "carl@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.card button[type=submit] >> nth=0")
    page.wait_for_load_state("networkidle")
    assert "/sign-in/code/" in page.url
    carl.shoot("totp-code")
    enter_code(page, carl_key, next_step=True)
    assert page.url.endswith("/console/") and role_shown(page) == "Auditor"

    # Bob is an admin by his IdP group; moved to the auditors' group, he is an auditor at his next sign-in
    bob = tab(chromium, live_server)
    assert role_shown(sign_in_through_idp(bob, "bob@acme.example", "bob")) == "Admin"
    bob.close()
    idp.person("bob", email="bob@acme.example", groups=["GovConsole Auditors"])
    bob = tab(chromium, live_server)
    assert role_shown(sign_in_through_idp(bob, "bob@acme.example", "bob")) == "Auditor"

    page = olga.open("/console/people/")
    olga.shoot("people")
    roles = dict(OrgRole.objects.filter(organization__slug="acme").values_list("user__email", "role"))
    assert roles == {"olga@acme.example": "owner", "ada@acme.example": "owner", "carl@acme.example": "auditor",
                     "bob@acme.example": "auditor"}
    acme = Organization.objects.get(slug="acme")
    methods = [e["payload"]["method"] for e in events(acme, "console.login")]
    assert methods.count("oidc") == 3 and "password" in methods
    assert olga_key != carl_key
    for browser in (olga, ada, carl, bob):
        browser.close()
