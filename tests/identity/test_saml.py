"""SAML 2.0 sign-in, end to end in a browser against a real IdP (pysaml2's, signing with xmlsec1): the
console sends the AuthnRequest, the IdP answers at the ACS, and only a signed answer for this
console, in time, to a request this browser started, signs anyone in."""
import time

import pytest
from django.test import Client

from accounts.models import OrgRole
from identity.access import METHOD_KEY, ORGANIZATION_KEY, SSO_ORGANIZATION_KEY
from identity.models import IdentityProvider, SignInPolicy
from identity.saml import acs_url, sp_entity_id, sp_metadata

from ..factories import OrgRoleFactory
from .conftest import events
from .saml_idp import TestIdP

pytestmark = pytest.mark.django_db
ROLES = {"Console Owners": "owner", "Console Admins": "admin", "Compliance": "auditor"}
ADA = {"mail": ["ada@acme.example"], "memberOf": ["Console Owners"]}


def saml_provider(organization, idp: TestIdP) -> IdentityProvider:
    return IdentityProvider.objects.create(organization=organization, protocol="saml", saml_entity_id=idp.entity_id,
                                           saml_sso_url=idp.sso_url, saml_certificate=idp.certificate,
                                           groups_claim="memberOf", role_mapping=ROLES)


@pytest.fixture
def idp(tmp_path, org):
    org.email_domains = ["acme.example"]
    org.save(update_fields=["email_domains"])
    idp = TestIdP(tmp_path, entity_id="https://idp.acme.example")
    return idp.trust(sp_metadata(saml_provider(org, idp)))


def start(browser: Client, organization) -> str:
    """The browser asks to sign in; the URL of the IdP it is sent to."""
    response = browser.get(f"/sso/{organization.slug}/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{organization.identity_provider.saml_sso_url}?SAMLRequest=")
    return response["Location"]


def post(browser: Client, organization, saml_response: str):
    return browser.post(f"/sso/{organization.slug}/saml/acs/", {"SAMLResponse": saml_response})


def sign_in(browser, organization, idp, attributes=ADA, subject="ada-1", **wrong):
    return post(browser, organization, idp.answer(start(browser, organization), subject=subject,
                                                  attributes=attributes, **wrong))


def refusal_reasons(organization) -> list[str]:
    return [event["payload"]["reason"] for event in events(organization, "console.sign_in_refused")]


def assert_refused(response, organization, reason):
    assert response.status_code == 403
    assert "You are not signed in" in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session
    assert refusal_reasons(organization) == [reason]
    assert events(organization, "console.login") == []


def test_an_owner_signs_in_through_saml_with_the_role_from_a_group_attribute(idp, org):
    SignInPolicy.objects.create(organization=org, session_minutes=60)
    browser = Client()
    response = sign_in(browser, org, idp)
    assert response.status_code == 302 and response["Location"] == "/"
    session = browser.session
    assert session[METHOD_KEY] == "saml" and session[ORGANIZATION_KEY] == session[SSO_ORGANIZATION_KEY] == org.pk
    assert session.get_expiry_age() == 60 * 60
    org_role = OrgRole.objects.get(organization=org)
    assert org_role.role == "owner" and org_role.user.email == "ada@acme.example"
    login, = events(org, "console.login")
    assert login["payload"]["method"] == "saml" and login["payload"]["subject"] == "ada-1"
    assert login["payload"]["issuer"] == "https://idp.acme.example"
    assert browser.get("/console/").status_code == 200  # no password, no one-time code: the IdP vouched


def test_a_group_change_at_the_idp_changes_the_role_at_the_next_sign_in(idp, org):
    OrgRoleFactory(organization=org, role="owner")  # another owner: the last one is never demoted
    sign_in(Client(), org, idp)
    response = sign_in(Client(), org, idp, attributes={**ADA, "memberOf": ["Compliance"]})
    assert response.status_code == 302
    assert OrgRole.objects.get(organization=org, user__email="ada@acme.example").role == "auditor"
    assert [event["payload"]["role"] for event in events(org, "console.login")] == ["owner", "auditor"]


def test_an_unsigned_assertion_is_refused(idp, org):
    assert_refused(sign_in(Client(), org, idp, sign_assertion=False), org, "unsigned")


def test_a_signed_response_around_an_unsigned_assertion_is_refused(idp, org):
    assert_refused(sign_in(Client(), org, idp, sign_assertion=False, sign_response=True), org, "unsigned")


def test_a_signed_response_around_a_signed_assertion_is_accepted(idp, org):
    assert sign_in(Client(), org, idp, sign_response=True).status_code == 302


def test_an_assertion_for_another_audience_is_refused(idp, org):
    response = sign_in(Client(), org, idp, audience="https://other-console.example/saml/metadata/")
    assert_refused(response, org, "wrong_audience")


def test_a_response_for_another_address_is_refused(idp, org):
    response = sign_in(Client(), org, idp, destination="https://other-console.example/saml/acs/")
    assert_refused(response, org, "wrong_recipient")


def test_an_expired_assertion_is_refused(idp, org, monkeypatch):
    browser = Client()
    saml_response = idp.answer(start(browser, org), subject="ada-1", attributes=ADA)
    later = time.time() + 60 * 60  # the IdP's assertions live five minutes
    monkeypatch.setattr("saml2.time_util.utc_now", lambda: later)
    assert_refused(post(browser, org, saml_response), org, "expired")


def test_a_response_posted_twice_is_a_replay(idp, org):
    browser = Client()
    saml_response = idp.answer(start(browser, org), subject="ada-1", attributes=ADA)
    pending = browser.cookies["saml_request"].value
    assert post(browser, org, saml_response).status_code == 302
    browser.cookies["saml_request"] = pending  # a second tab still waiting for the same answer
    response = post(browser, org, saml_response)
    assert response.status_code == 403 and refusal_reasons(org) == ["replay"]


def test_an_unsolicited_response_is_refused(idp, org):
    browser = Client()
    start(browser, org)  # the browser's own request is not the one answered
    saml_response = idp.respond("id-the-console-never-sent", sp_entity_id=sp_entity_id(org.identity_provider),
                                acs=acs_url(org.identity_provider), subject="ada-1", attributes=ADA)
    assert_refused(post(browser, org, saml_response), org, "unsolicited")


def test_an_idp_initiated_response_is_refused(idp, org):
    saml_response = idp.respond(None, sp_entity_id=sp_entity_id(org.identity_provider),
                                acs=acs_url(org.identity_provider), subject="ada-1", attributes=ADA)
    assert_refused(post(Client(), org, saml_response), org, "unsolicited")


def test_a_response_signed_by_another_key_is_refused(idp, org, tmp_path):
    impostor = TestIdP(tmp_path, entity_id=idp.entity_id, name="impostor").trust(sp_metadata(org.identity_provider))
    assert_refused(sign_in(Client(), org, impostor), org, "bad_signature")


def test_a_person_in_no_mapped_group_is_refused(idp, org):
    response = sign_in(Client(), org, idp, attributes={**ADA, "memberOf": ["Everyone"]})
    assert_refused(response, org, "no_mapped_group")
    assert "none of your groups" in response.content.decode()


def test_an_idp_of_one_organization_cannot_sign_anyone_in_to_another(idp, org, other_org, tmp_path):
    globex_idp = TestIdP(tmp_path, entity_id="https://idp.globex.example", name="globex")
    globex_idp.trust(sp_metadata(saml_provider(other_org, globex_idp)))
    idp.trust(sp_metadata(org.identity_provider), sp_metadata(other_org.identity_provider))
    browser = Client()
    # Acme's IdP answers a sign-in started at Globex, for Globex's console
    response = post(browser, other_org, idp.answer(start(browser, other_org), subject="ada-1", attributes=ADA))
    assert response.status_code == 403
    assert refusal_reasons(other_org) == ["bad_signature"]
    assert not OrgRole.objects.filter(organization=other_org).exists()


def test_the_acs_takes_only_posts_and_unknown_organizations_have_no_saml(idp, org, other_org):
    browser = Client()
    assert browser.get(f"/sso/{org.slug}/saml/acs/").status_code == 405
    assert browser.get(f"/sso/{other_org.slug}/saml/metadata/").status_code == 404  # no SAML provider
    assert browser.get("/sso/nowhere/saml/metadata/").status_code == 404
    assert browser.get(f"/sso/{org.slug}/")["Location"].startswith(idp.sso_url)
    IdentityProvider.objects.filter(organization=org).update(enabled=False)
    assert browser.get(f"/sso/{org.slug}/saml/metadata/").status_code == 404
    assert browser.get(f"/sso/{org.slug}/")["Location"] == "/login/"  # told apart from no organization: never


def test_the_metadata_names_our_entity_and_acs(idp, org):
    response = Client().get(f"/sso/{org.slug}/saml/metadata/")
    assert response.status_code == 200 and response["Content-Type"] == "application/samlmetadata+xml"
    text = response.content.decode()
    assert f'entityID="{sp_entity_id(org.identity_provider)}"' in text
    assert acs_url(org.identity_provider) in text
