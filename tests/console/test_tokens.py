"""The Tokens page: an organization's admins give their identity provider or a service a token,
see when each was last used, and revoke one; the token is shown once and only its digest is kept."""
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import services as accounts
from accounts.models import ApiToken
from audit.actors import SYSTEM
from audit.models import AuditEvent, EventKind
from audit.services import drain_outbox

from .conftest import member, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(org):
    return member(org, "admin")


@pytest.fixture
def admin(admin_user):
    return signed_in(admin_user)


def shown_token(response) -> str:
    match = re.search(r'<code class="secret" id="new-token">(agc_[A-Za-z0-9_-]+)</code>', response.content.decode())
    assert match, "the new token is shown"
    return match.group(1)


def scim_users(raw):
    return Client().get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_an_admin_creates_a_scim_token_shown_once_and_usable_at_once(admin, admin_user, org):
    response = admin.post(reverse("console:tokens"), {"name": "Okta provisioning", "scope": "scim"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = shown_token(response)
    assert "http://testserver/scim/v2/" in response.content.decode()
    token = ApiToken.objects.get(organization=org, name="Okta provisioning")
    assert token.scope == "scim" and token.digest == ApiToken.digest_of(raw) and token.hint == raw[:len(token.hint)]
    assert not ApiToken.objects.filter(digest=raw).exists()  # only the digest is stored

    assert scim_users(raw).status_code == 200
    listed = admin.get(reverse("console:tokens")).content.decode()
    assert raw not in listed and token.hint in listed and "Okta provisioning" in listed

    drain_outbox(org.pk)
    event = AuditEvent.objects.get(organization=org, kind=EventKind.TOKEN_CREATED)
    assert (event.actor_kind, event.actor_name) == ("user", admin_user.get_username())
    assert raw not in event.body


def test_the_page_tells_when_each_token_was_last_used(admin, org):
    _, raw = accounts.create_api_token(organization=org, name="billing", scope="api", actor=SYSTEM)
    assert "never" in admin.get(reverse("console:tokens")).content.decode()

    assert Client().get("/api/v1/catalog/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200

    assert ApiToken.objects.get(name="billing").last_used_at is not None
    assert "0\xa0minutes ago" in admin.get(reverse("console:tokens")).content.decode()


def test_a_revoked_token_is_refused_from_the_next_request_and_the_revocation_is_audited(admin, admin_user, org):
    token, raw = accounts.create_api_token(organization=org, name="Entra", scope="scim", actor=SYSTEM)
    assert scim_users(raw).status_code == 200

    response = admin.post(reverse("console:token-revoke", args=[token.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("console:tokens")
    assert scim_users(raw).status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None
    page = admin.get(reverse("console:tokens")).content.decode()
    assert "revoked" in page and reverse("console:token-revoke", args=[token.pk]) not in page
    drain_outbox(org.pk)
    event = AuditEvent.objects.get(organization=org, kind=EventKind.TOKEN_REVOKED)
    assert (event.actor_kind, event.actor_name) == ("user", admin_user.get_username())

    again = admin.post(reverse("console:token-revoke", args=[token.pk]))  # twice is harmless
    assert again.status_code == 302
    drain_outbox(org.pk)
    assert AuditEvent.objects.filter(organization=org, kind=EventKind.TOKEN_REVOKED).count() == 1


def test_a_live_name_cannot_be_taken_twice_but_a_revoked_ones_can(admin, org):
    token, _ = accounts.create_api_token(organization=org, name="Okta", scope="scim", actor=SYSTEM)

    response = admin.post(reverse("console:tokens"), {"name": "Okta", "scope": "scim"})
    assert response.status_code == 400 and "revoke it first" in response.content.decode()
    assert ApiToken.objects.filter(organization=org).count() == 1

    accounts.revoke_api_token(token=token, actor=SYSTEM)
    assert admin.post(reverse("console:tokens"), {"name": "Okta", "scope": "scim"}).status_code == 200
    assert ApiToken.objects.filter(organization=org, name="Okta").count() == 2


@pytest.mark.parametrize("form, field", [({"name": "", "scope": "api"}, "name"),
                                         ({"name": "x", "scope": "root"}, "scope"),
                                         ({"name": "x" * 101, "scope": "api"}, "name")])
def test_bad_input_is_refused_and_creates_nothing(admin, org, form, field):
    response = admin.post(reverse("console:tokens"), form)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not ApiToken.objects.filter(organization=org).exists()


def test_an_auditor_sees_the_tokens_but_cannot_create_or_revoke_them(org):
    token, raw = accounts.create_api_token(organization=org, name="billing", scope="api", actor=SYSTEM)
    auditor = signed_in(member(org, "auditor"))

    page = auditor.get(reverse("console:tokens")).content.decode()
    assert "billing" in page and "Create the token" not in page and "Revoke" not in page
    assert auditor.post(reverse("console:tokens"), {"name": "mine", "scope": "api"}).status_code == 403
    assert auditor.post(reverse("console:token-revoke", args=[token.pk])).status_code == 403
    assert ApiToken.objects.filter(organization=org).count() == 1
    assert Client().get("/api/v1/catalog/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
