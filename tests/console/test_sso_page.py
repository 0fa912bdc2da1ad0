"""The Single sign-on page: owners set up the organization's IdP with the addresses to give it, the
client secret is never shown again, and "Test connection" says what the IdP answers."""
import socket

import pytest

from identity import secrets
from identity.models import IdentityProvider

from .conftest import member, signed_in

pytestmark = pytest.mark.django_db
PAGE = "/console/settings/single-sign-on/"
FORM = {"protocol": "oidc", "issuer": "https://93.184.215.14/oauth2/default", "client_id": "0oa1",
        "client_secret": "s3cret-value", "groups_claim": "groups", "enabled": "on",
        "role_mapping": "GovConsole Owners = owner\nGovConsole Admins = Admin\n\nCompliance = auditor"}


def test_an_owner_sets_up_oidc_and_the_secret_is_never_shown_again(org):
    owner = signed_in(member(org, "owner"))
    page = owner.get(PAGE)
    assert f"/sso/{org.slug}/callback/" in page.content.decode()
    saved = owner.post(PAGE, FORM)
    assert saved.status_code == 302
    provider = IdentityProvider.objects.get(organization=org)
    assert provider.role_mapping == {"GovConsole Owners": "owner", "GovConsole Admins": "admin",
                                     "Compliance": "auditor"}
    assert secrets.unseal(provider.client_secret) == "s3cret-value"
    shown = owner.get(PAGE).content.decode()
    assert "s3cret-value" not in shown and provider.client_secret not in shown and "GovConsole Admins" in shown


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_only_owners_change_it(org, role):
    assert signed_in(member(org, role)).post(PAGE, FORM).status_code == 403
    assert not IdentityProvider.objects.exists()


@pytest.mark.parametrize("change, says", [
    ({"role_mapping": "Admins admin"}, "Line 1"),
    ({"role_mapping": "Admins = root"}, "role must be one of"),
    ({"issuer": "http://10.0.0.5/"}, "public address"),
])
def test_a_bad_form_says_what_is_wrong_and_saves_nothing(org, change, says):
    answer = signed_in(member(org, "owner")).post(PAGE, {**FORM, **change})
    assert answer.status_code == 400 and says in answer.content.decode()
    assert not IdentityProvider.objects.exists()


def test_test_connection_shows_what_the_idp_answers(org, settings):
    settings.SSO_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    owner = signed_in(member(org, "owner"))
    owner.post(PAGE, {**FORM, "issuer": f"http://127.0.0.1:{port}"})
    tested = owner.post(PAGE, {"action": "test"})
    assert tested.status_code == 400 and "the connection failed" in tested.content.decode()
