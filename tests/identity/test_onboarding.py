"""Onboarding without a shell: the first owner's invitation from create_org, a forgotten password reset by
e-mail, and the organization's name and sign-in rules set by its owners."""
import io
import re

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from accounts.models import Organization, OrgRole
from audit.actors import SYSTEM
from identity.models import IdentityProvider, SignInPolicy

from ..console.conftest import member, signed_in
from .conftest import events

pytestmark = pytest.mark.django_db


def test_create_org_with_an_owner_email_prints_a_link_that_makes_them_owner(django_capture_on_commit_callbacks):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("create_org", "--slug", "initech", "--name", "Initech", "--owner-email", "boss@initech.test",
                     stdout=out)
    link = out.getvalue().strip().splitlines()[-1]
    assert link.startswith("http") and "/invitations/" in link
    [sent] = mail.outbox
    assert link in sent.body and sent.to == ["boss@initech.test"]
    client = Client()
    path = link.split("://", 1)[1].partition("/")[1:]
    response = client.post("".join(path), {"new_password1": "tangerine submarine 42",
                                           "new_password2": "tangerine submarine 42"})
    assert response.status_code == 302 and response["Location"] == "/sign-in/code/"
    organization = Organization.objects.get(slug="initech")
    assert OrgRole.objects.get(organization=organization).role == "owner"


def test_create_org_with_a_bad_owner_email_creates_nothing():
    from django.core.management.base import CommandError
    with pytest.raises(CommandError):
        call_command("create_org", "--slug", "initech", "--name", "Initech", "--owner-email", "not-an-address",
                     stdout=io.StringIO())
    assert not Organization.objects.filter(slug="initech").exists()


def reset_link(body: str) -> str:
    return re.search(r"https?://[^/\s]+(/password-reset/\S+)", body).group(1)


def test_a_forgotten_password_is_reset_by_mail_and_audited(org, other_org):
    user = member(org, "admin")
    OrgRole.objects.create(organization=other_org, user=user, role="auditor")
    user.email = "admin@acme.test"
    user.save()
    client = Client()
    assert client.post("/password-reset/", {"email": "ADMIN@acme.test"}).status_code == 302
    [sent] = mail.outbox
    link = reset_link(sent.body)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": "tangerine submarine 42",
                                                         "new_password2": "tangerine submarine 42"})
    assert done.status_code == 302 and done["Location"] == "/password-reset/complete/"
    user.refresh_from_db()
    assert user.check_password("tangerine submarine 42")
    for organization in (org, other_org):
        [event] = events(organization, "console_user.password_reset")
        assert event["payload"]["user"] == user.username
    assert client.get(link, follow=True).context["validlink"] is False  # the link is good once


def test_people_who_sign_in_only_through_sso_get_no_reset_mail(org):
    user = member(org, "admin")
    user.email = "sso@acme.test"
    user.set_unusable_password()
    user.save()
    assert Client().post("/password-reset/", {"email": "sso@acme.test"}).status_code == 302
    assert mail.outbox == []


def test_an_unknown_address_gets_the_same_answer_and_no_mail(org):
    response = Client().post("/password-reset/", {"email": "nobody@acme.test"})
    assert response.status_code == 302 and response["Location"] == "/password-reset/done/"
    assert mail.outbox == []


def test_an_owner_renames_the_organization_and_the_change_is_audited(org):
    owner = member(org, "owner")
    response = signed_in(owner).post("/console/settings/", {"form": "name", "name": "Acme Worldwide"})
    assert response.status_code == 302
    assert Organization.objects.get(pk=org.pk).name == "Acme Worldwide"
    assert events(org, "organization.changed")[-1]["payload"] == {"before": {"name": "Acme"},
                                                                  "after": {"name": "Acme Worldwide"}}


def test_an_owner_sets_the_session_lifetime_and_it_is_audited(org):
    owner = member(org, "owner")
    response = signed_in(owner).post("/console/settings/", {"form": "sign_in", "session_minutes": "60"})
    assert response.status_code == 302
    assert SignInPolicy.objects.get(organization=org).session_minutes == 60
    [event] = events(org, "console.sign_in_changed")
    assert event["payload"]["before"]["session_minutes"] == 480 and event["payload"]["after"]["session_minutes"] == 60


def test_sso_cannot_be_required_without_an_enabled_identity_provider(org):
    owner = member(org, "owner")
    response = signed_in(owner).post("/console/settings/", {"form": "sign_in", "session_minutes": "480",
                                                            "require_sso": "on", "break_glass_user": owner.pk})
    assert response.status_code == 400 and "identity provider" in response.content.decode()
    assert not SignInPolicy.objects.filter(organization=org, require_sso=True).exists()


def test_sso_is_required_with_an_owner_as_break_glass_only(org):
    owner, admin = member(org, "owner"), member(org, "admin")
    IdentityProvider.objects.create(organization=org, protocol="oidc", issuer="https://idp.acme.test",
                                    client_id="console")
    client = signed_in(owner)
    refused = client.post("/console/settings/", {"form": "sign_in", "session_minutes": "480", "require_sso": "on",
                                                  "break_glass_user": admin.pk})
    assert refused.status_code == 400
    accepted = client.post("/console/settings/", {"form": "sign_in", "session_minutes": "480", "require_sso": "on",
                                                   "break_glass_user": owner.pk})
    assert accepted.status_code == 302
    policy = SignInPolicy.objects.get(organization=org)
    assert policy.require_sso and policy.break_glass_user == owner
    assert events(org, "console.sign_in_changed")[-1]["payload"]["after"]["break_glass_user"] == owner.username


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_only_owners_change_the_name_and_sign_in_rules(org, role):
    client = signed_in(member(org, role))
    assert client.post("/console/settings/", {"form": "name", "name": "Hijacked"}).status_code == 403
    assert client.post("/console/settings/", {"form": "sign_in", "session_minutes": "15"}).status_code == 403
    assert Organization.objects.get(pk=org.pk).name == "Acme"
    assert not SignInPolicy.objects.filter(organization=org).exists()


def test_a_password_session_lasts_as_long_as_the_strictest_organization_allows(org, other_org):
    from ..console.conftest import PASSWORD
    user = member(org, "auditor")
    OrgRole.objects.create(organization=other_org, user=user, role="auditor")
    SignInPolicy.objects.create(organization=other_org, session_minutes=30)
    client = Client()
    assert client.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    assert 29 * 60 < client.session.get_expiry_age() <= 30 * 60


def test_a_break_glass_owner_demoted_later_loses_the_exception(org):
    from accounts import services as accounts
    owner, other_owner = member(org, "owner"), member(org, "owner")
    SignInPolicy.objects.create(organization=org, require_sso=True, break_glass_user=owner)
    assert signed_in(owner).get("/console/").status_code == 200
    accounts.change_org_role(organization=org, user=owner, role="admin", actor=SYSTEM)
    assert signed_in(owner).get("/console/")["Location"].startswith("/sign-in/sso-required/")
    assert other_owner  # the organization keeps an owner, who signs in through the IdP


@pytest.mark.parametrize("path, data", [
    ("/password-reset/", {"email": "not an address\x00"}),
    ("/sso/", {"email": "a" * 300 + "@acme.example"}),
    ("/sso/", {"email": "ada@acme.example\x00"}),
])
def test_a_bad_sign_in_form_is_a_400_that_names_its_field(path, data):
    response = Client().post(path, data)
    assert response.status_code == 400 and "email" in response.content.decode()
