"""The People page: everyone sees who uses the console; only owners invite, change, remove or reset."""
import pytest
from django.core import mail
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import OrgRole
from identity.models import Invitation

from ..identity.conftest import events
from .conftest import member, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(org):
    return member(org, "owner")


def role_of(org, user):
    return OrgRole.objects.filter(organization=org, user=user).values_list("role", flat=True).first()


@pytest.mark.parametrize("role", ["owner", "admin", "auditor"])
def test_every_member_sees_the_people_their_roles_and_sign_in_methods(org, owner, role):
    viewer = owner if role == "owner" else member(org, role)
    response = signed_in(viewer).get("/console/people/")
    assert response.status_code == 200
    text = response.content.decode()
    assert owner.username in text and viewer.username in text
    assert "Password" in text and "enrolled" in text
    assert ("Invite someone" in text) == (role == "owner")


def test_an_owner_invites_someone_and_the_link_is_mailed_and_shown_once(org, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(owner).post("/console/people/", {"email": "new@acme.test", "role": "admin"})
    assert response.status_code == 200
    [sent] = mail.outbox
    link = response.context["invited"]["link"]
    assert link in sent.body and link in response.content.decode()
    assert Invitation.objects.get().email == "new@acme.test"
    assert events(org, "console_user.invited")[0]["actor"]["name"] == owner.username


def test_an_owner_changes_a_role_and_the_change_is_audited(org, owner):
    auditor = member(org, "auditor")
    response = signed_in(owner).post(f"/console/people/{auditor.pk}/role/", {"role": "admin"})
    assert response.status_code == 302
    assert role_of(org, auditor) == "admin"
    assert events(org, "membership.changed")[-1]["payload"] == {"user": auditor.username, "role": "admin",
                                                                 "before": "auditor"}


def test_the_last_owner_demoting_themselves_is_told_why_and_stays_owner(org, owner):
    client = signed_in(owner)
    response = client.post(f"/console/people/{owner.pk}/role/", {"role": "auditor"}, follow=True)
    assert "last owner" in response.content.decode()
    assert role_of(org, owner) == "owner"


def test_an_owner_removes_someone_and_resets_a_code(org, owner):
    admin = member(org, "admin")
    signed_in(admin)  # enrols a device
    client = signed_in(owner)
    assert client.post(f"/console/people/{admin.pk}/code-reset/").status_code == 302
    assert not TOTPDevice.objects.filter(user=admin).exists()
    assert client.post(f"/console/people/{admin.pk}/remove/").status_code == 302
    assert role_of(org, admin) is None
    assert events(org, "console_user.mfa_changed")[-1]["payload"]["change"] == "removed"
    assert events(org, "console_user.removed")[-1]["payload"]["user"] == admin.username


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_admins_and_auditors_change_nobody(org, owner, role):
    actor = member(org, role)
    other = member(org, "auditor")
    signed_in(owner)  # enrols the owner's authenticator
    invitation = Invitation.objects.create(organization=org, email="x@acme.test", role="owner", token_digest="0" * 64,
                                           expires_at="2099-01-01T00:00:00Z")
    client = signed_in(actor)
    before = list(OrgRole.objects.filter(organization=org).values_list("user_id", "role").order_by("user_id"))
    assert client.post("/console/people/", {"email": "new@acme.test", "role": "owner"}).status_code == 403
    assert client.post(f"/console/people/{other.pk}/role/", {"role": "owner"}).status_code == 403
    assert client.post(f"/console/people/{owner.pk}/remove/").status_code == 403
    assert client.post(f"/console/people/{owner.pk}/code-reset/").status_code == 403
    assert client.post(f"/console/invitations/{invitation.pk}/revoke/").status_code == 403
    assert list(OrgRole.objects.filter(organization=org).values_list("user_id", "role").order_by("user_id")) == before
    assert TOTPDevice.objects.filter(user=owner).exists()
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert Invitation.objects.count() == 1
    assert not any("before" in event["payload"] for event in events(org, "membership.changed"))
    assert events(org, "console_user.removed") == events(org, "console_user.mfa_changed") == []


def test_an_owner_withdraws_an_invitation(org, owner):
    client = signed_in(owner)
    client.post("/console/people/", {"email": "new@acme.test", "role": "auditor"})
    invitation = Invitation.objects.get()
    assert client.post(f"/console/invitations/{invitation.pk}/revoke/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert "new@acme.test" not in client.get("/console/people/").context["invitations"].values_list("email", flat=True)
