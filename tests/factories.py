from datetime import datetime, timezone

import factory
from django.contrib.auth import get_user_model
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account, AccountGroup, Group, Organization, OrgRole

MEMBER_SINCE = datetime(2020, 1, 1, tzinfo=timezone.utc)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.Sequence(lambda n: f"Organization {n}")


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    organization = factory.SubFactory(OrganizationFactory)
    display_name = factory.Sequence(lambda n: f"Group {n}")


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    user_name = factory.Sequence(lambda n: f"person{n}@example.test")
    email = factory.LazyAttribute(lambda a: a.user_name)
    display_name = factory.Sequence(lambda n: f"Person {n}")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        """Memberships held all along (since MEMBER_SINCE): decisions as of any past instant see them."""
        for group in extracted or ():
            AccountGroup.objects.create(account=self, group=group, added_at=MEMBER_SINCE)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}@example.test")
    password = factory.django.Password("correct horse battery")


class OrgRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrgRole

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = "admin"


def sign_in(client, user, *, code_checked: bool = True):
    """Sign `client` in as `user`, as after the password page and, with `code_checked`, the one-time-code
    check that owners and admins pass in every password session (identity.access)."""
    client.force_login(user)
    if code_checked:
        device = (TOTPDevice.objects.filter(user=user, confirmed=True).first()
                  or TOTPDevice.objects.create(user=user, name="test", confirmed=True))
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client
