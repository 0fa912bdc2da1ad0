"""One uniqueness check serves the REST API and SCIM: exact for the API, userName without regard to
case for SCIM (RFC 7643 §4.1.1), and the field it names is the first one taken, whichever row holds it."""
import pytest
from django.core.exceptions import ValidationError

from accounts import services as accounts
from accounts.models import Account
from audit.actors import SYSTEM

from ..factories import AccountFactory, GroupFactory
from .conftest import assert_scim_error, patch_op
from .idp_requests import GROUP, okta_create_user

pytestmark = pytest.mark.django_db


def test_the_api_keeps_user_names_that_differ_in_case_apart(api, org):
    AccountFactory(organization=org, user_name="ada@acme.test")
    assert api.post("/api/v1/accounts/", {"user_name": "Ada@acme.test"}, format="json").status_code == 201


def test_scim_refuses_a_user_name_that_differs_only_in_case(scim, org):
    AccountFactory(organization=org, user_name="ada@acme.test")
    body = assert_scim_error(scim.post("Users", okta_create_user("ADA@acme.test", external_id="00u-new")), 409,
                             "uniqueness")
    assert body["detail"] == "userName: 'ADA@acme.test' is taken in this organization."
    assert Account.objects.filter(organization=org).count() == 1


def test_the_user_name_is_named_before_the_external_id_held_by_another_account(org):
    AccountFactory(organization=org, user_name="first@acme.test", external_id="00u-taken")
    AccountFactory(organization=org, user_name="ada@acme.test")
    with pytest.raises(ValidationError) as refused:
        accounts.create_account(organization=org, actor=SYSTEM, user_name="Ada@acme.test", external_id="00u-taken",
                                user_name_any_case=True)
    assert refused.value.message_dict == {"user_name": ["'Ada@acme.test' is taken in this organization."]}
    with pytest.raises(ValidationError) as refused:
        accounts.create_account(organization=org, actor=SYSTEM, user_name="Ada@acme.test", external_id="00u-taken")
    assert refused.value.message_dict == {"external_id": ["'00u-taken' is taken in this organization."]}


def test_renaming_a_user_to_another_case_of_its_own_name_is_no_clash(scim, org):
    ada = AccountFactory(organization=org, user_name="ada@acme.test")
    renamed = scim.patch(f"Users/{ada.pk}", patch_op({"op": "replace", "path": "userName", "value": "Ada@acme.test"}))
    assert renamed.status_code == 200 and renamed.json()["userName"] == "Ada@acme.test"


def test_a_group_external_id_taken_is_a_conflict_named_in_scim_words(scim, org):
    GroupFactory(organization=org, display_name="Sales", external_id="00g-sales")
    body = assert_scim_error(scim.post("Groups", {"schemas": [GROUP], "displayName": "Legal",
                                                   "externalId": "00g-sales"}), 409, "uniqueness")
    assert body["detail"] == "externalId: '00g-sales' is taken in this organization."
