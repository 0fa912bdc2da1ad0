"""What happens after an IdP's answer has passed its protocol's checks (identity.services): the role
comes from the person's groups and follows the IdP at every sign-in, people are created at their
first sign-in and never matched by e-mail address, and every refusal changes nothing and is audited."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import OrgRole
from identity.models import ExternalIdentity, IdentityProvider, SeenAssertion
from identity.services import SignInRefused, VerifiedIdentity, complete_sso_sign_in, record_refusal
from identity.tasks import forget_used_assertions

from ..console.conftest import member
from .conftest import events

pytestmark = pytest.mark.django_db
ISSUER = "https://idp.acme.example"


@pytest.fixture
def provider(org):
    org.email_domains = ["acme.example"]
    org.save(update_fields=["email_domains"])
    return IdentityProvider.objects.create(organization=org, protocol="oidc", issuer=ISSUER, client_id="console",
                                           role_mapping={"Console Owners": "owner", "Console Admins": "admin",
                                                         "Compliance": "auditor"})


def asserted(subject="00u1", email="ada@acme.example", groups=("Console Admins",), nonce="n-1"):
    return VerifiedIdentity(issuer=ISSUER, subject=subject, email=email, groups=tuple(groups), one_time_value=nonce,
                            valid_until=timezone.now() + timedelta(minutes=10))


def test_a_person_is_created_at_first_sign_in_and_their_role_follows_the_idp(provider, org):
    user = complete_sso_sign_in(provider=provider, identity=asserted(groups=("Compliance", "Console Admins")),
                                ip="203.0.113.1")
    assert OrgRole.objects.get(user=user, organization=org).role == "admin"  # the highest mapped group
    assert not user.has_usable_password()
    again = complete_sso_sign_in(provider=provider, identity=asserted(groups=("Compliance",), nonce="n-2"), ip=None)
    assert again == user and OrgRole.objects.get(user=user, organization=org).role == "auditor"
    roles = [e["payload"]["role"] for e in events(org, "membership.changed")]
    assert roles == ["admin", "auditor"]
    logins = events(org, "console.login")
    assert [(e["payload"]["method"], e["payload"]["role"]) for e in logins] == [("oidc", "admin"), ("oidc", "auditor")]


def test_an_existing_user_with_the_same_address_is_never_taken_over(provider, org, other_org):
    elsewhere = member(other_org, "owner")
    elsewhere.username = elsewhere.email = "ada@acme.example"
    elsewhere.save()
    user = complete_sso_sign_in(provider=provider, identity=asserted(email="ada@acme.example"), ip=None)
    assert user != elsewhere and user.username == "sso:acme:ada@acme.example"
    assert not OrgRole.objects.filter(user=elsewhere, organization=org).exists()


@pytest.mark.parametrize("identity, reason", [
    (asserted(groups=("Everyone",)), "no_mapped_group"),
    (asserted(email="mallory@globex.example"), "foreign_domain"),
])
def test_a_refused_sign_in_changes_nothing(provider, org, identity, reason):
    users = get_user_model().objects.count()
    with pytest.raises(SignInRefused) as refused:
        complete_sso_sign_in(provider=provider, identity=identity, ip=None)
    assert refused.value.reason == reason and str(refused.value)
    assert get_user_model().objects.count() == users and not ExternalIdentity.objects.exists()
    assert events(org, "console.login") == [] and events(org, "membership.changed") == []


def test_the_same_nonce_twice_is_a_replay(provider, org):
    complete_sso_sign_in(provider=provider, identity=asserted(), ip=None)
    with pytest.raises(SignInRefused) as refused:
        complete_sso_sign_in(provider=provider, identity=asserted(), ip=None)
    assert refused.value.reason == "replay"
    record_refusal(organization=org, method="oidc", reason="replay", ip="203.0.113.9", subject="00u1")
    refusal, = events(org, "console.sign_in_refused")
    assert refusal["payload"] == {"method": "oidc", "reason": "replay", "ip": "203.0.113.9", "detail": ""}


def test_used_one_time_values_are_forgotten_once_their_answers_have_expired(provider, org):
    complete_sso_sign_in(provider=provider, identity=asserted(nonce="fresh"), ip=None)
    SeenAssertion.objects.create(organization=org, protocol="oidc", identifier="old",
                                 expires_at=timezone.now() - timedelta(hours=1))
    assert forget_used_assertions() == 1
    assert list(SeenAssertion.objects.values_list("identifier", flat=True)) == ["fresh"]
    with pytest.raises(SignInRefused):  # the one still in date is still refused a second time
        complete_sso_sign_in(provider=provider, identity=asserted(nonce="fresh"), ip=None)
