"""Invitations: a link good once, for seven days, for the invited address only."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import OrgRole
from audit.actors import SYSTEM, user_actor
from identity import invitations
from identity.models import Invitation

from ..console.conftest import PASSWORD, member, signed_in
from .conftest import events

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "tangerine submarine 42"


@pytest.fixture
def owner(org):
    return member(org, "owner")


def invite(org, email="new@acme.test", role="auditor", by=None, capture=None):
    if capture is None:
        return invitations.invite(organization=org, email=email, role=role, actor=SYSTEM, invited_by=by)
    with capture(execute=True):
        return invitations.invite(organization=org, email=email, role=role, actor=SYSTEM, invited_by=by)


def path_of(raw):
    return f"/invitations/{raw}/"


def choose_password(client, raw, password=NEW_PASSWORD):
    return client.post(path_of(raw), {"new_password1": password, "new_password2": password})


def test_an_invitation_is_mailed_with_its_link_role_and_expiry(org, owner, django_capture_on_commit_callbacks):
    invitation, raw = invite(org, role="admin", by=owner, capture=django_capture_on_commit_callbacks)
    [sent] = mail.outbox
    assert sent.to == ["new@acme.test"]
    assert invitations.link_for(raw) in sent.body
    assert owner.username in sent.body and "Acme" in sent.body and "admin" in sent.body
    assert invitation.expires_at.strftime("%Y-%m-%d") in sent.body
    assert Invitation.objects.get().token_digest == Invitation.digest_of(raw) != raw


def test_the_invitation_is_audited_without_its_token(org):
    invitation, raw = invite(org)
    [event] = events(org, "console_user.invited")
    assert event["payload"]["email"] == "new@acme.test" and event["payload"]["role"] == "auditor"
    assert raw not in str(event) and invitation.token_digest not in str(event)


def test_a_new_person_chooses_a_password_and_is_signed_in_with_the_role(org):
    _, raw = invite(org)
    client = Client()
    page = client.get(path_of(raw))
    assert page.status_code == 200 and b"Acme" in page.content and b"auditor" in page.content
    response = choose_password(client, raw)
    assert response.status_code == 302 and response["Location"] == "/"
    user = get_user_model().objects.get(username="new@acme.test")
    assert user.check_password(NEW_PASSWORD) and user.email == "new@acme.test"
    assert OrgRole.objects.get(organization=org, user=user).role == "auditor"
    assert client.get("/console/").status_code == 200
    [accepted] = events(org, "console_user.invitation_accepted")
    assert accepted["payload"]["user"] == "new@acme.test"


def test_an_invited_admin_goes_on_to_set_up_a_one_time_code(org):
    _, raw = invite(org, role="admin")
    response = choose_password(Client(), raw)
    assert response["Location"] == "/sign-in/code/"


def test_a_weak_password_is_refused_and_nothing_is_created(org):
    _, raw = invite(org)
    response = choose_password(Client(), raw, password="new@acme.test")
    assert response.status_code == 400
    assert not get_user_model().objects.filter(username="new@acme.test").exists()


def test_an_invitation_is_good_once(org):
    _, raw = invite(org)
    choose_password(Client(), raw)
    again = choose_password(Client(), raw, password="another long passphrase")
    assert again.status_code == 410 and b"accepted already" in again.content
    assert get_user_model().objects.get(username="new@acme.test").check_password(NEW_PASSWORD)


def test_an_expired_invitation_is_refused(org):
    invitation, raw = invite(org)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = choose_password(Client(), raw)
    assert response.status_code == 410 and b"expired" in response.content
    assert not get_user_model().objects.filter(username="new@acme.test").exists()


def test_a_revoked_invitation_is_refused_and_the_revocation_audited(org, owner):
    invitation, raw = invite(org)
    invitations.revoke(invitation=invitation, actor=user_actor(owner))
    response = choose_password(Client(), raw)
    assert response.status_code == 410 and b"withdrawn" in response.content
    assert events(org, "console_user.invitation_revoked")[0]["payload"]["email"] == "new@acme.test"


def test_a_second_invitation_to_the_same_address_replaces_the_first(org):
    first, first_raw = invite(org)
    second, second_raw = invite(org, email="NEW@acme.test", role="admin")
    assert choose_password(Client(), first_raw).status_code == 410
    assert choose_password(Client(), second_raw).status_code == 302
    assert events(org, "console_user.invited")[1]["payload"]["replaces"] == [first.pk]


def test_a_wrong_token_is_not_found(org):
    invite(org)
    assert Client().get(path_of("not-the-token")).status_code == 404
    assert Client().post(path_of("not-the-token"), {"new_password1": NEW_PASSWORD,
                                                     "new_password2": NEW_PASSWORD}).status_code == 404


def test_a_link_holder_cannot_take_over_an_existing_account(org, other_org):
    existing = member(other_org, "owner")
    _, raw = invite(org, email=existing.username, role="owner")
    response = choose_password(Client(), raw)
    assert response.status_code == 400 and b"sign in" in response.content
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD)
    assert not OrgRole.objects.filter(organization=org, user=existing).exists()


def test_an_existing_user_signs_in_first_then_accepts(org, other_org):
    existing = member(other_org, "auditor")
    _, raw = invite(org, email=existing.username, role="admin")
    client = signed_in(existing)
    assert client.get(path_of(raw)).status_code == 200
    response = client.post(path_of(raw))
    assert response.status_code == 302
    assert OrgRole.objects.get(organization=org, user=existing).role == "admin"
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD)


def test_someone_else_signed_in_cannot_accept(org, other_org):
    _, raw = invite(org)
    intruder = member(other_org, "auditor")
    response = signed_in(intruder).post(path_of(raw))
    assert response.status_code == 400 and b"signed in as" in response.content
    assert not OrgRole.objects.filter(organization=org, user=intruder).exists()
    assert Invitation.objects.get().accepted_at is None


def test_the_last_owner_invited_again_with_a_lesser_role_stays_owner(org):
    owner = member(org, "owner")
    _, raw = invite(org, email=owner.username, role="auditor")
    with pytest.raises(invitations.InvitationRefused):
        invitations.accept(token=raw, user=owner)
    assert OrgRole.objects.get(organization=org, user=owner).role == "owner"


def test_a_bad_address_or_role_is_refused_naming_the_field(org):
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError) as bad_email:
        invite(org, email="not an address")
    with pytest.raises(ValidationError) as bad_role:
        invite(org, role="superuser")
    assert "email" in bad_email.value.message_dict and "role" in bad_role.value.message_dict
