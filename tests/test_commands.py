"""The management commands a newcomer and an operator type."""
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.signing import generate_private_pem
from accounts.models import Account, AccountGroup, ApiToken, Group, Organization
from governance.models import PolicyRule

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_org_and_a_token_printed_alone_on_the_last_line(client):
    run("create_org", "--slug", "acme", "--name", "Acme Corp")
    out, _ = run("create_api_token", "--org", "acme", "--name", "ci", "--scope", "api")
    raw = out.strip().splitlines()[-1]
    assert raw.startswith("agc_") and " " not in raw
    assert ApiToken.objects.get(name="ci").digest == ApiToken.digest_of(raw)
    assert client.get("/api/v1/catalog/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_revoke_api_token_refuses_the_token_from_the_next_request(client):
    run("create_org", "--slug", "acme", "--name", "Acme Corp")
    raw = run("create_api_token", "--org", "acme", "--name", "okta", "--scope", "scim")[0].strip().splitlines()[-1]
    assert client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200

    out, _ = run("revoke_api_token", "--org", "acme", "--name", "okta")

    assert "Revoked 'okta'" in out and raw not in out
    assert client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    with pytest.raises(CommandError, match="No live token"):
        run("revoke_api_token", "--org", "acme", "--name", "okta")


def test_create_org_refuses_a_taken_slug():
    run("create_org", "--slug", "acme", "--name", "Acme")
    with pytest.raises(CommandError, match="exists already"):
        run("create_org", "--slug", "acme", "--name", "Acme again")


def test_create_api_token_for_an_unknown_org_fails():
    with pytest.raises(CommandError, match="No organization"):
        run("create_api_token", "--org", "nope", "--name", "x", "--scope", "api")


def test_demo_seeds_the_story_and_running_it_twice_duplicates_nothing():
    out, _ = run("demo", "--no-serve")
    organization = Organization.objects.get(slug="acme")
    counts = (Account.objects.count(), Group.objects.count(), PolicyRule.objects.count(), AccountGroup.objects.count())
    assert 1900 <= counts[0] <= 2100 and counts[1] == 12
    assert PolicyRule.objects.filter(organization=organization, scope="organization", locked=True).exists()
    assert PolicyRule.objects.filter(organization=organization, scope="account").count() >= 3
    assert organization.email_domains == ["acme.example"]  # its people's addresses: reports may be mailed there
    assert "Console (admin)" in out and "API token" in out

    run("demo", "--no-serve")
    assert (Account.objects.count(), Group.objects.count(), PolicyRule.objects.count(),
            AccountGroup.objects.count()) == counts
    assert ApiToken.objects.filter(name="demo", revoked_at__isnull=True).count() == 1


def test_production_refuses_to_start_without_a_secret():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "DJANGO_ENV": "production", "ALLOWED_HOSTS": "console.example"})
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


PRODUCTION = {"DJANGO_ENV": "production", "ALLOWED_HOSTS": "console.example",
              "SECRET_KEY": "x" * 20 + "-production-secret-of-sufficient-length-" + "y" * 20}


def test_production_settings_pass_the_deploy_check():
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **PRODUCTION, "AUDIT_SIGNING_KEY": generate_private_pem()})
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_cookies_are_secure_http_only_and_same_site():
    """What the browser is told on the sign-in page: the CSRF cookie is Secure and SameSite, and the
    session cookie will be Secure, HttpOnly and SameSite (the deploy check does not look at SameSite)."""
    script = ("from django.conf import settings as s; from django.test import Client; "
              "r = Client().get('/login/', secure=True, headers={'host': 'console.example'}); "
              "print(r.status_code, r.cookies['csrftoken'].output()); "
              "print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE)")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, **PRODUCTION, "AUDIT_SIGNING_KEY": generate_private_pem(),
                                            "DATABASE_URL": "sqlite://:memory:"})
    assert result.returncode == 0, result.stderr
    page, session = result.stdout.strip().splitlines()[-2:]
    assert page.startswith("200 ") and "; Secure" in page and "SameSite=Lax" in page
    assert session == "True True Lax"
