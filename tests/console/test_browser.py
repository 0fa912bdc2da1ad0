"""The console in a real browser: Debian's Chromium driven by Playwright against a live server.

The demo organization (about 2,000 people, its switches set a month ago) with a month of activity;
tasks run eagerly on commit, as in the embedded default. Each page is saved to docs/screenshots/.
"""
import os
from base64 import b32decode
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services as accounts
from audit.actors import SYSTEM
from audit.services import write_digest
from console.demo_data import ACTIVITY_DAYS, backdated, seed_activity
from console.management.commands.demo import seed_demo_organization
from governance.models import PolicyRule
from reports import services as report_services

from ..factories import UserFactory
from .conftest import CHROMIUM, PASSWORD, member, populate, settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REASON = "Company-wide rollout after the Sales pilot"


@pytest.fixture
def chromium(transactional_db):
    # Started after the test database is set up (and its seeded catalog restored): Playwright's sync
    # API runs an event loop in this thread, and the ORM calls the test makes between browser steps
    # are plain synchronous ones all the same.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        connections.close_all()  # the ones the test opened while the browser's loop ran
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def demo(eager_celery, append_only_rows_cleared):
    with backdated(timezone.now() - timedelta(days=ACTIVITY_DAYS + 1)):
        organization = seed_demo_organization()
    seed_activity(organization)
    write_digest(organization)
    return organization


# Reported by the page itself, so a violation counts even where the browser would log nothing.
REPORT_CSP_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (event) => window.cspViolation(
  `${event.violatedDirective} blocked ${event.blockedURI} in ${event.sourceFile}:${event.lineNumber}`));"""


class Browser:
    """One signed-in tab that remembers every console error, failed request and Content-Security-Policy
    violation."""

    def __init__(self, chromium, live_server=None):
        self.context = chromium.new_context(viewport={"width": 1440, "height": 900})
        self.page = self.context.new_page()
        self.base = live_server.url if live_server else ""
        self.errors = []
        self.violations = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("requestfailed", lambda request: self.errors.append(f"failed: {request.url}"))
        self.page.expose_function("cspViolation", lambda text: self.violations.append(text))
        self.page.add_init_script(REPORT_CSP_VIOLATIONS)

    def open(self, path: str):
        self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        return self.page

    def sign_in(self, username: str, shot: str | None = None):
        page = self.open("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        if shot:
            self.shoot(shot)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        if "/sign-in/code/" in page.url:  # owners and admins: the one-time code, enrolled at the first sign-in
            secret = page.locator("#totp-secret")
            key = (b32decode(secret.inner_text()) if secret.count()
                   else TOTPDevice.objects.get(user__username=username, confirmed=True).bin_key)
            page.fill("input[name=code]", f"{totp(key):06d}")
            page.click("form button[type=submit] >> nth=0")
            page.wait_for_load_state("networkidle")

    def charts_drawn(self, count: int):
        self.page.wait_for_function(
            f"document.querySelectorAll('.chart[data-rendered=true]').length >= {count}", timeout=15_000)
        assert self.page.locator(".chart .main-svg").count() >= count

    def shoot(self, name: str, *, max_height: int | None = None):
        """Save the whole page (long lists: their top `max_height` pixels) for the README."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        clip = None
        if max_height:
            height = self.page.evaluate("document.documentElement.scrollHeight")
            clip = {"x": 0, "y": 0, "width": 1440, "height": min(height, max_height)}
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, clip=clip)

    def close(self):
        self.context.close()


@pytest.fixture
def browser(chromium, live_server):
    tab = Browser(chromium, live_server)
    yield tab
    tab.close()


def test_an_admin_reads_every_page_and_flips_a_switch(demo, browser):
    admin = member(demo, "admin")
    person = (demo.accounts.filter(groups__display_name="Support", active=True).exclude(groups__display_name="Sales")
              .filter(rules__isnull=True).order_by("pk").first())

    # signing in leads to the overview, whose four charts Plotly draws from the local bundle
    browser.sign_in(admin.username, shot="login")
    assert browser.page.url.endswith("/console/")
    browser.charts_drawn(4)
    assert browser.page.locator(".figures dd").count() == 6
    browser.shoot("overview")

    for path, charts, shot in (("/console/terms/", 2, "terms"), ("/console/flows/?verdict=violation", 0, "flows"),
                               ("/console/accounts/?group=" + str(person.groups.first().pk), 0, "accounts")):
        browser.open(path)
        if charts:
            browser.charts_drawn(charts)
        browser.shoot(shot, max_height=None if charts else 1600)

    # before: chat compose is off for a Support agent, by the organization's rule
    page = browser.open(f"/console/accounts/{person.pk}/")
    assert page.locator("tr[data-feature=chat_compose] [data-effect]").inner_text() == "deny"

    # the admin turns chat compose on for everyone: a preview with its impact, then a reason
    browser.open("/console/policy/")
    browser.shoot("policy")
    page.click("button[data-switch=chat_compose]")
    page.wait_for_load_state("networkidle")
    assert int(page.locator("[data-accounts-changed]").get_attribute("data-accounts-changed")) > 1000
    page.fill("textarea[name=reason]", REASON)
    browser.shoot("policy-preview")
    page.click("button:has-text('Save the change')")
    page.wait_for_load_state("networkidle")
    assert "Chat compose is now allow" in page.locator(".messages").inner_text()

    # the agent's effective policy changed, and says why
    page = browser.open(f"/console/accounts/{person.pk}/")
    row = page.locator("tr[data-feature=chat_compose]")
    assert row.locator("[data-effect]").inner_text() == "allow"
    assert REASON in row.inner_text()
    browser.shoot("account")

    # the audit trail has the change, by this admin, with the reason; the chain still verifies
    page = browser.open("/console/audit/")
    newest = page.locator("table.events tbody tr").first
    assert newest.get_attribute("data-kind") == "policy.changed"
    assert REASON in newest.inner_text() and admin.username in newest.inner_text()
    assert page.locator("[data-chain=valid]").count() == 1
    browser.shoot("audit", max_height=1600)

    assert browser.errors == [] and browser.violations == []


def test_an_auditor_sees_no_switch_and_cannot_flip_one(demo, browser):
    auditor = member(demo, "auditor")
    rules_before = list(PolicyRule.objects.filter(organization=demo).values_list("pk", "effect", "deleted_at"))

    browser.sign_in(auditor.username)
    browser.charts_drawn(4)
    page = browser.open("/console/policy/")
    assert page.locator("button[data-switch]").count() == 0
    assert page.locator("text=Set a switch").count() == 0

    # forging the form anyway is refused by the server
    token = next(c["value"] for c in browser.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(browser.base + "/console/policy/change/", form={
        "csrfmiddlewaretoken": token, "step": "confirm", "scope": "organization", "feature": "chat_compose",
        "effect": "allow", "reason": "not mine to change"})
    assert response.status == 403
    assert list(PolicyRule.objects.filter(organization=demo).values_list("pk", "effect", "deleted_at")) == rules_before
    assert browser.errors == [] and browser.violations == []


def test_an_admin_gives_the_identity_provider_a_token_and_revokes_it(eager_celery, append_only_rows_cleared,
                                                                      org, browser):
    admin = member(org, "admin")
    browser.sign_in(admin.username)

    page = browser.open("/console/tokens/")
    page.fill("input[name=name]", "Okta provisioning")
    page.check("input[name=scope][value=scim]")
    page.click("button:has-text('Create the token')")
    page.wait_for_load_state("networkidle")
    raw = page.locator("#new-token").inner_text()
    assert raw.startswith("agc_") and browser.base + "/scim/v2/" in page.locator(".new-token").inner_text()
    browser.shoot("tokens")

    # what the identity provider does with it
    scim = {"Authorization": f"Bearer {raw}"}
    assert page.request.get(browser.base + "/scim/v2/Users", headers=scim).status == 200

    # revoking asks first; dismissing the question keeps the token
    page = browser.open("/console/tokens/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button:has-text('Revoke')")
    assert page.request.get(browser.base + "/scim/v2/Users", headers=scim).status == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Revoke')")
    page.wait_for_load_state("networkidle")
    assert "Revoked the token" in page.locator(".messages").inner_text()
    assert raw not in page.content()
    assert page.request.get(browser.base + "/scim/v2/Users", headers=scim).status == 401
    assert browser.errors == [] and browser.violations == []


# --- names that look like markup, and pages that are not the console's own -----------------------------------------

MARKUP_NAMES = ('<a href="https://evil.example">x</a>', "<b>Bold</b> &amp; <br>broken",
                '<span style="font-size:60px;color:red">Huge</span>')
SVG_TEXTS = "() => Array.from(document.querySelectorAll('.js-plotly-plot svg text')).map((t) => t.textContent)"


def groups_named_like_markup(organization):
    groups = populate(organization, people=30)["groups"]
    for group, name in zip(groups.values(), MARKUP_NAMES):
        accounts.update_group(group=group, actor=SYSTEM, display_name=name)
    settle(organization)


def assert_shown_as_typed(page):
    texts = page.evaluate(SVG_TEXTS)
    for name in MARKUP_NAMES:
        assert any(name in text for text in texts), (name, texts)
    assert page.locator(".js-plotly-plot svg a").count() == 0  # no name became a link


def test_group_names_that_look_like_markup_are_shown_as_typed_and_link_nowhere(
        eager_celery, append_only_rows_cleared, org, browser):
    groups_named_like_markup(org)
    browser.sign_in(member(org, "admin").username)
    browser.charts_drawn(4)
    assert_shown_as_typed(browser.page)
    assert browser.errors == [] and browser.violations == []


def test_the_html_report_opened_from_disk_draws_its_charts_under_its_own_policy(
        eager_celery, append_only_rows_cleared, org, chromium, tmp_path):
    groups_named_like_markup(org)
    today = timezone.now().date()
    report = report_services.request_report(organization=org, actor=SYSTEM, period_start=today - timedelta(days=7),
                                            period_end=today + timedelta(days=1), formats=["html"], enqueue=False)
    report_services.generate_report(report.pk)
    saved = tmp_path / "report.html"
    saved.write_bytes(bytes(report.files.get(format="html").content))

    tab = Browser(chromium)
    tab.page.goto(saved.as_uri())
    tab.page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5",
                               timeout=15_000)
    assert_shown_as_typed(tab.page)
    assert tab.errors == [] and tab.violations == []
    tab.close()


def test_the_api_docs_and_the_admin_site_run_under_the_policy(eager_celery, append_only_rows_cleared, org, browser):
    page = browser.open("/api/docs/")
    page.wait_for_selector(".opblock", timeout=15_000)  # Swagger UI drew the operations
    page = browser.open("/api/redoc/")
    page.wait_for_selector("[data-section-id]", timeout=15_000)  # so did Redoc

    # the admin site's sign-in is the console's one door, which then leads back to the admin
    staff = UserFactory(is_staff=True, is_superuser=True)
    page = browser.open("/admin/accounts/account/")
    assert page.url == browser.base + "/login/?next=/admin/accounts/account/"
    page.fill("input[name=username]", staff.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url == browser.base + "/admin/accounts/account/" and page.locator("#changelist").count() == 1

    # Redoc's footer asks its vendor's CDN for a logo: refused, as everything from elsewhere is
    assert [v for v in browser.violations if "cdn.redoc.ly" not in v] == []
    assert [e for e in browser.errors if "cdn.redoc.ly" not in e] == []
