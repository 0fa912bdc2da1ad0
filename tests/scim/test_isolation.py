"""A SCIM token sees and changes its own organization only: another one's users and groups do not exist."""
import pytest

from accounts.models import AccountGroup

from ..factories import AccountFactory, GroupFactory
from .conftest import assert_scim_error, patch_op, written_rows
from .idp_requests import okta_create_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(other_org):
    account = AccountFactory(organization=other_org, user_name="ada@globex.test", external_id="00u-globex")
    group = GroupFactory(organization=other_org, display_name="Globex Sales", external_id="g-globex")
    AccountGroup.objects.create(account=account, group=group)
    return account, group


def test_another_organizations_users_and_groups_are_404(scim, theirs):
    account, group = theirs
    before = written_rows()
    for response in (
            scim.get(f"Users/{account.pk}"),
            scim.put(f"Users/{account.pk}", okta_create_user("ada@globex.test")),
            scim.patch(f"Users/{account.pk}", patch_op({"op": "replace", "path": "active", "value": False})),
            scim.delete(f"Users/{account.pk}"),
            scim.get(f"Groups/{group.pk}"),
            scim.put(f"Groups/{group.pk}", {"displayName": "Mine now"}),
            scim.patch(f"Groups/{group.pk}", patch_op({"op": "remove", "path": "members"})),
            scim.delete(f"Groups/{group.pk}")):
        assert_scim_error(response, 404)
    assert written_rows() == before
    account.refresh_from_db()
    group.refresh_from_db()
    assert account.active and group.display_name == "Globex Sales" and group.accounts.count() == 1


def test_lists_and_filters_show_only_the_callers_organization(scim, org, theirs):
    mine = AccountFactory(organization=org, user_name="bob@acme.test")
    assert [r["id"] for r in scim.get("Users").json()["Resources"]] == [str(mine.pk)]
    assert scim.get('Users?filter=userName eq "ada@globex.test"').json()["totalResults"] == 0
    assert scim.get('Users?filter=externalId eq "00u-globex"').json()["totalResults"] == 0
    assert scim.get(f'Groups?filter=members.value eq "{theirs[0].pk}"').json()["totalResults"] == 0
    assert scim.get("Groups").json()["totalResults"] == 0


def test_another_organizations_user_cannot_join_a_group(scim, org, theirs):
    group = GroupFactory(organization=org, display_name="Sales")
    before = written_rows()
    add = patch_op({"op": "add", "path": "members", "value": [{"value": str(theirs[0].pk)}]})
    assert_scim_error(scim.patch(f"Groups/{group.pk}", add), 400, "invalidValue")
    assert_scim_error(scim.post("Groups", {"displayName": "New", "members": [{"value": str(theirs[0].pk)}]}),
                      400, "invalidValue")
    assert written_rows() == before


def test_names_are_unique_per_organization_only(scim, theirs):
    assert scim.post("Users", okta_create_user("ada@globex.test", external_id="00u-globex")).status_code == 201
    assert scim.post("Groups", {"displayName": "Globex Sales", "externalId": "g-globex"}).status_code == 201


def test_each_organization_provisions_with_its_own_token(scim, other_scim, org, other_org):
    mine = scim.post("Users", okta_create_user("same@example.test")).json()
    theirs = other_scim.post("Users", okta_create_user("same@example.test")).json()
    assert mine["id"] != theirs["id"]
    assert_scim_error(other_scim.get(f"Users/{mine['id']}"), 404)
    assert_scim_error(scim.get(f"Users/{theirs['id']}"), 404)
