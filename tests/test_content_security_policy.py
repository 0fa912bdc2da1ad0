"""Every page the site serves carries a Content-Security-Policy: only this site's own scripts run,
nothing inline, nothing from elsewhere, nothing frames it. And no template needs more than that."""
import base64
import hashlib
import re
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import path
from django.utils import timezone

from audit.actors import SYSTEM
from config.urls import handler404, handler500, urlpatterns as site_urlpatterns  # noqa: F401 (this urlconf's)
from reports import services as report_services

from .conftest import token_client
from .factories import OrgRoleFactory, UserFactory, sign_in

pytestmark = pytest.mark.django_db


def boom(request):
    raise RuntimeError("a bug")


urlpatterns = [path("boom/", boom), *site_urlpatterns]


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']} ({response.status_code})"
    return {name: sources for name, *sources in (part.split() for part in header.split(";") if part.strip())}


def assert_strict(response, *, styles_inline: bool = False):
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no inline script, no eval, no other host
    assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert ("'unsafe-inline'" in directives["style-src"]) is styles_inline
    assert not any(source.startswith(("http:", "https:", "*")) for sources in directives.values() for source in sources)


@pytest.fixture
def owner(org):
    client = Client()
    sign_in(client, OrgRoleFactory(organization=org, role="owner").user)
    return client


@pytest.fixture
def staff():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_console_pages_send_the_policy(owner):
    for page in ("/console/", "/console/terms/", "/console/policy/", "/console/audit/"):
        response = owner.get(page)
        assert response.status_code == 200, page
        assert_strict(response)


def test_the_sign_in_pages_send_the_policy():
    assert_strict(Client().get("/login/"))
    assert_strict(Client().get("/admin/login/"))


def test_the_admin_site_sends_the_policy(staff):
    for page in ("/admin/", "/admin/accounts/account/"):
        response = staff.get(page)
        assert response.status_code == 200, page
        assert_strict(response)


def test_the_api_docs_send_the_policy_and_only_redoc_may_style_inline():
    swagger = Client().get("/api/docs/")
    assert_strict(swagger)
    assert b"<script>" not in swagger.content and b"<style>" not in swagger.content
    start_up = Client().get("/api/docs/?script=")
    assert start_up["Content-Type"].startswith("application/javascript")
    redoc = Client().get("/api/redoc/")
    assert_strict(redoc, styles_inline=True)  # Redoc writes <style> elements at run time; no script inline
    assert b"fonts.googleapis.com" not in redoc.content and b"<script>" not in redoc.content


def test_the_api_sends_the_policy(org):
    assert_strict(token_client(org).get("/api/v1/catalog/"))
    assert_strict(Client().get("/api/schema/"))


def test_a_served_html_report_runs_no_script_on_this_site(org):
    today = timezone.now().date()
    report = report_services.request_report(organization=org, actor=SYSTEM, period_start=today,
                                            period_end=today + timedelta(days=1), formats=["html"], enqueue=False)
    report_services.generate_report(report.pk)
    response = token_client(org).get(f"/api/v1/reports/{report.pk}/download/?format=html")
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    assert_strict(response)  # its inline plotly.js would not run here: the file carries its own policy

    # ... which lets it run its own scripts and nothing else, and load nothing, wherever it is opened
    html = response.content.decode()
    own = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert own and html.index(own.group(0)) < html.index("<script")
    directives = {name: sources for name, *sources in (part.split() for part in unescape(own.group(1)).split(";"))}
    assert directives["default-src"] == ["'none'"] and directives["img-src"] == ["data:"]
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) >= 6  # plotly.js, its config and five charts
    assert sorted(directives["script-src"]) == sorted(
        {"'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'" for body in scripts})


@pytest.mark.urls(__name__)
def test_error_pages_send_the_policy(owner):
    assert_strict(Client().get("/no-such-page/"))
    assert_strict(Client().get("/api/v1/no-such-thing/"))
    assert_strict(Client(raise_request_exception=False).get("/boom/"))
    refused = Client(enforce_csrf_checks=True).post("/login/", {"username": "x", "password": "y"})
    assert refused.status_code == 403
    assert_strict(refused)


# --- the templates need nothing the policy refuses ----------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"=\s*[\"']?\s*javascript:", re.IGNORECASE)
# the self-contained report file carries its own <style> and scripts, under its own policy (a <meta>)
OWN_POLICY = {Path("reports/templates/reports/report.html")}


def project_templates():
    base = Path(settings.BASE_DIR)
    for folder in [base / "templates", *base.glob("*/templates")]:
        for template in sorted(folder.rglob("*.html")):
            yield template.relative_to(base), template.read_text()


def test_no_template_has_inline_script_event_handlers_or_style_attributes():
    templates = dict(project_templates())
    assert Path("templates/base.html") in templates and Path("templates/api/redoc.html") in templates
    for name, text in templates.items():
        assert not EVENT_HANDLER.search(text), name
        assert not JAVASCRIPT_URL.search(text), name
        if name in OWN_POLICY:
            continue
        assert not INLINE_SCRIPT.search(text), name
        assert not STYLE_ATTRIBUTE.search(text), name
        assert "<style" not in text, name
