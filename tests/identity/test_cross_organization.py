"""An identity provider vouches for its own organization only: what it asserts (an address, a
subject) never reaches into another organization, and an owner of one organization cannot weaken
what guards another's console."""
import threading

import pytest
from django.core.cache import cache
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import OrgRole
from audit.actors import SYSTEM
from identity import invitations
from identity.models import ExternalIdentity, IdentityProvider
from identity.oidc import pending_key
from identity.secrets import seal

from ..factories import OrgRoleFactory, sign_in
from .conftest import events
from .test_oidc_tokens import CLIENT_ID, ForgingIdP

pytestmark = pytest.mark.django_db


@pytest.fixture
def idp(settings):
    settings.SSO_ALLOWED_HOSTS = ["127.0.0.1"]
    cache.clear()
    server = ForgingIdP()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def idp_of(organization, idp, domains=()):
    organization.email_domains = list(domains)
    organization.save(update_fields=["email_domains"])
    return IdentityProvider.objects.create(organization=organization, protocol="oidc", issuer=idp.issuer,
                                           client_id=CLIENT_ID, client_secret=seal("secret"),
                                           role_mapping={"Admins": "admin", "Owners": "owner"})


def through(idp, browser, organization, **claims):
    browser.get(f"/sso/{organization.slug}/")
    pending = browser.session[pending_key(organization.pk)]
    idp.id_token = idp.sign(nonce=pending["nonce"], **claims)
    return browser.get(f"/sso/{organization.slug}/callback/?code=c&state={pending['state']}")


def test_a_user_an_idp_created_cannot_accept_another_organizations_invitation(org, other_org, idp):
    # org's IdP (no e-mail domains) asserts an address of the other organization, as an attacker's would
    idp_of(org, idp)
    browser = Client()
    assert through(idp, browser, org, sub="evil-1", email="ceo@globex.example", groups=["Admins"]).status_code == 302
    user = ExternalIdentity.objects.get(subject="evil-1").user
    assert user.get_username() == "sso:acme:ceo@globex.example"  # never the address itself
    _, raw = invitations.invite(organization=other_org, email="ceo@globex.example", role="owner", actor=SYSTEM)

    refused = browser.post(f"/invitations/{raw}/")
    assert refused.status_code == 400 and not OrgRole.objects.filter(organization=other_org, user=user).exists()
    # and the real person, not signed in, can still take the invitation with a password of their own
    page = Client().get(f"/invitations/{raw}/")
    assert page.status_code == 200 and "exists already" not in page.content.decode()


def test_an_idp_change_never_demotes_the_last_owner(org, idp):
    idp_of(org, idp, domains=["acme.example"])
    assert through(idp, Client(), org, sub="ada", email="ada@acme.example", groups=["Owners"]).status_code == 302
    assert through(idp, Client(), org, sub="ada", email="ada@acme.example", groups=["Admins"]).status_code == 302
    assert list(OrgRole.objects.filter(organization=org).values_list("role", flat=True)) == ["owner"]
    kept = events(org, "console.login")[-1]["payload"]
    assert kept["role"] == "owner" and kept["groups_role"] == "admin"


def test_an_id_token_with_groups_of_an_odd_shape_signs_in_no_one(org, idp):
    idp_of(org, idp, domains=["acme.example"])
    response = through(idp, Client(), org, sub="ada", email="ada@acme.example", groups=5)
    assert response.status_code == 403 and "no_mapped_group" in response.content.decode()


def test_an_owner_cannot_reset_the_code_of_someone_who_is_also_in_another_organization(org, other_org):
    owner = OrgRoleFactory(organization=org, role="owner").user
    both = OrgRoleFactory(organization=other_org, role="owner").user
    OrgRoleFactory(organization=org, role="auditor", user=both)
    TOTPDevice.objects.create(user=both, name="phone", confirmed=True)
    answer = sign_in(Client(), owner).post(f"/console/people/{both.pk}/code-reset/", follow=True)
    assert "platform operator" in answer.content.decode()
    assert TOTPDevice.objects.filter(user=both).count() == 1
