"""Who may act in an organization's console once signed in: owners and admins with a password pass
a one-time code (TOTP) first, enrolled at their first sign-in; an organization that requires SSO
turns every password session away but its break-glass owner's; the API's session authentication
answers the same as the pages."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts import services as accounts
from audit.actors import SYSTEM
from identity.access import ORGANIZATION_KEY, SSO_ORGANIZATION_KEY
from identity.models import SignInPolicy

from ..console.conftest import PASSWORD, member
from ..factories import sign_in
from .conftest import events

pytestmark = pytest.mark.django_db


def password_session(user, client_class=Client):
    client = client_class()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_an_admin_signed_in_with_a_password_enrols_an_authenticator_before_any_page(org):
    admin = member(org, "admin")
    client = password_session(admin)
    page = client.get("/console/policy/")
    assert page.status_code == 302 and page["Location"] == "/sign-in/code/?next=/console/policy/"
    assert password_session(admin, APIClient).get("/api/v1/catalog/").status_code == 403

    enrol = client.get(page["Location"])
    assert enrol.context["enrolling"] and enrol.context["qr_code"].startswith("data:image/svg+xml")
    device = TOTPDevice.objects.get(user=admin, confirmed=False)
    wrong = client.post("/sign-in/code/", {"code": f"{(totp(device.bin_key) + 1) % 1_000_000:06d}",
                                           "next": "/console/policy/"})
    assert wrong.status_code == 400 and not TOTPDevice.objects.filter(user=admin, confirmed=True).exists()
    too_soon = client.post("/sign-in/code/", {"code": f"{totp(device.bin_key):06d}"})
    assert too_soon.status_code == 400 and "wait" in too_soon.context["error"]
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=timezone.now() - timedelta(minutes=1))

    right = client.post("/sign-in/code/", {"code": f"{totp(device.bin_key):06d}", "next": "/console/policy/"})
    assert right.status_code == 302 and right["Location"] == "/console/policy/"
    assert client.get("/console/policy/").status_code == 200
    assert [e["payload"] for e in events(org, "console_user.mfa_changed")] == [
        {"user": admin.username, "factor": "totp", "change": "enrolled"}]


def test_a_code_is_good_once_and_an_enrolled_admin_is_asked_for_one_in_every_new_session(org):
    admin = member(org, "admin")
    device = TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)
    first = password_session(admin)
    code = f"{totp(device.bin_key):06d}"
    assert first.post("/sign-in/code/", {"code": code})["Location"] == "/"
    second = password_session(admin)
    assert second.get("/console/")["Location"].startswith("/sign-in/code/")
    replayed = second.post("/sign-in/code/", {"code": code})
    assert replayed.status_code == 400  # the same time step again
    assert not second.get("/sign-in/code/").context["enrolling"]


def test_an_auditor_reads_with_a_password_alone(org):
    assert password_session(member(org, "auditor")).get("/console/audit/").status_code == 200


def test_an_organization_requiring_sso_turns_password_sessions_away_but_the_break_glass_owners(org):
    owner, admin, auditor = member(org, "owner"), member(org, "admin"), member(org, "auditor")
    SignInPolicy.objects.create(organization=org, require_sso=True, break_glass_user=owner)
    for user in (admin, auditor):
        client = sign_in(Client(), user)
        assert client.get("/console/")["Location"] == "/sign-in/sso-required/?next=/console/"
        assert sign_in(APIClient(), user).get("/api/v1/catalog/").status_code == 403
    assert sign_in(Client(), owner).get("/console/").status_code == 200
    assert sign_in(Client(), owner, code_checked=False).get("/console/")["Location"].startswith("/sign-in/code/")

    through_sso = sign_in(Client(), admin, code_checked=False)
    session = through_sso.session
    session[SSO_ORGANIZATION_KEY] = session[ORGANIZATION_KEY] = org.pk
    session.save()
    assert through_sso.get("/console/").status_code == 200  # no TOTP: the IdP vouches for the sign-in


def test_a_session_signed_in_through_one_organizations_idp_is_not_one_through_anothers(org, other_org):
    admin = member(org, "admin")
    accounts.add_org_role(organization=other_org, user=admin, role="admin", actor=SYSTEM)
    SignInPolicy.objects.create(organization=other_org, require_sso=True)
    client = sign_in(Client(), admin, code_checked=False)
    session = client.session
    session[SSO_ORGANIZATION_KEY] = org.pk
    session[ORGANIZATION_KEY] = other_org.pk
    session.save()
    assert client.get("/console/")["Location"] == "/sign-in/sso-required/?next=/console/"


def test_a_password_sign_in_and_a_wrong_password_are_audited_with_the_address(org):
    auditor = member(org, "auditor")
    Client(REMOTE_ADDR="198.51.100.4").post("/login/", {"username": auditor.username, "password": "wrong"})
    Client(REMOTE_ADDR="198.51.100.5").post("/login/", {"username": auditor.username, "password": PASSWORD})
    refused, = events(org, "console.sign_in_refused")
    assert refused["payload"] == {"method": "password", "reason": "wrong_password", "ip": "198.51.100.4"}
    signed_in = events(org, "console.login")
    assert signed_in[-1]["payload"] == {"method": "password", "role": "auditor", "ip": "198.51.100.5"}


def test_an_auditor_may_turn_codes_on_and_is_then_asked_for_one_at_every_sign_in(org):
    auditor = member(org, "auditor")
    client = password_session(auditor)
    offer = client.get("/sign-in/code/?next=/console/audit/")
    assert offer.context["enrolling"] and not offer.context["required"] and "Not now" in offer.content.decode()
    device = TOTPDevice.objects.get(user=auditor, confirmed=False)
    assert client.post("/sign-in/code/", {"code": f"{totp(device.bin_key):06d}"}).status_code == 302
    assert client.get("/console/audit/").status_code == 200

    later = Client()
    later.post("/login/", {"username": auditor.username, "password": PASSWORD})
    assert later.get("/console/audit/")["Location"] == "/sign-in/code/?next=/console/audit/"

