"""Okta provisions an organization: the requests of its SCIM 2.0 guide, in the order it sends them."""
import pytest

from accounts.models import Account, Group
from audit.models import OutboxEntry

from . import idp_requests as okta
from .conftest import accounts_left, assert_scim_error, memberships_left

pytestmark = pytest.mark.django_db


def test_okta_assigns_deactivates_and_pushes_groups(scim, org):
    # Assign: look the user up by userName (nothing), then create it.
    lookup = scim.get(okta.okta_lookup("test.user@okta.local"))
    assert lookup.status_code == 200
    assert lookup.json() == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0,
                             "startIndex": 1, "itemsPerPage": 0, "Resources": []}
    created = scim.post("Users", okta.okta_create_user())
    assert created.status_code == 201, created.content
    user = created.json()
    assert created["Location"] == user["meta"]["location"] and created["ETag"] == user["meta"]["version"]
    assert user["userName"] == "test.user@okta.local" and user["active"] is True
    assert user["emails"] == [{"value": "test.user@okta.local", "type": "work"}]
    assert "password" not in user

    # The lookup now finds it, and GET by id returns it.
    found = scim.get(okta.okta_lookup("test.user@okta.local")).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == user["id"]
    assert scim.get(f"Users/{user['id']}").json()["displayName"] == "Test User"

    # Assigning the same person again is a conflict Okta understands.
    duplicate = scim.post("Users", okta.okta_create_user(user_name="TEST.USER@okta.local", external_id="00uother"))
    assert_scim_error(duplicate, 409, "uniqueness")

    # Profile push: a PUT of the whole user.
    replaced = scim.put(f"Users/{user['id']}", okta.okta_replace_user(user["id"]))
    assert replaced.status_code == 200 and replaced.json()["displayName"] == "Another Test User"

    # Unassign: Okta deactivates, it never deletes; the user stays readable and findable.
    deactivated = scim.patch(f"Users/{user['id']}", okta.OKTA_DEACTIVATE)
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    assert scim.get(f"Users/{user['id']}").json()["active"] is False
    assert scim.get(okta.okta_lookup("test.user@okta.local")).json()["totalResults"] == 1
    scim.patch(f"Users/{user['id']}", okta.OKTA_REACTIVATE)

    # Group push: a second user, then the group with its members, a rename, member changes, a PUT.
    second = scim.post("Users", okta.okta_create_user("second.user@okta.local", "Second", "User", "00usecond")).json()
    group = scim.post("Groups", okta.okta_create_group("Test SCIMv2", [(user["id"], "test.user@okta.local")]))
    assert group.status_code == 201, group.content
    group = group.json()
    assert [m["value"] for m in group["members"]] == [user["id"]]
    renamed = scim.patch(f"Groups/{group['id']}", okta.okta_rename_group(group["id"], "Sales"))
    assert renamed.status_code == 200 and renamed.json()["displayName"] == "Sales"
    added = scim.patch(f"Groups/{group['id']}", okta.okta_add_members((second["id"], "second.user@okta.local")))
    assert sorted(m["value"] for m in added.json()["members"]) == sorted([user["id"], second["id"]])
    removed = scim.patch(f"Groups/{group['id']}", okta.okta_remove_member(user["id"]))
    assert [m["value"] for m in removed.json()["members"]] == [second["id"]]
    put = scim.put(f"Groups/{group['id']}", okta.okta_replace_group(group["id"], "Sales EMEA", [
        (user["id"], "test.user@okta.local"), (second["id"], "second.user@okta.local")]))
    assert put.status_code == 200 and put.json()["displayName"] == "Sales EMEA"

    # What is left: both accounts, active, in the one group.
    assert accounts_left(org) == {
        ("test.user@okta.local", True, "test.user@okta.local", "Another Test User", "00ujl29u0le5T6Aj10h7"),
        ("second.user@okta.local", True, "second.user@okta.local", "Second User", "00usecond"),
    }
    assert memberships_left(org) == {("Sales EMEA", "test.user@okta.local"), ("Sales EMEA", "second.user@okta.local")}
    # The user reads its group back.
    assert scim.get(f"Users/{user['id']}").json()["groups"] == [
        {"value": group["id"], "$ref": f"http://testserver/scim/v2/Groups/{group['id']}", "display": "Sales EMEA",
         "type": "direct"}]
    # And every change is the IdP's in the audit trail.
    kinds = set(OutboxEntry.objects.filter(organization=org, actor__kind="idp").values_list("kind", flat=True))
    assert {"account.provisioned", "account.changed", "account.deactivated", "group.created",
            "group.changed"} <= kinds


def test_okta_deletes_a_pushed_group_keeping_its_history(scim, org):
    user = scim.post("Users", okta.okta_create_user()).json()
    group = scim.post("Groups", okta.okta_create_group("Contractors", [(user["id"], "test.user@okta.local")])).json()
    assert scim.delete(f"Groups/{group['id']}").status_code == 204
    assert_scim_error(scim.get(f"Groups/{group['id']}"), 404)
    assert scim.get('Groups?filter=displayName eq "Contractors"').json()["totalResults"] == 0
    assert memberships_left(org) == set()
    kept = Group.objects.get(pk=group["id"])
    assert kept.display_name == f"Contractors#deleted-{kept.pk}"
    assert OutboxEntry.objects.filter(kind="group.deleted", payload__before__display_name="Contractors").exists()
    # The name is free again for a new group.
    assert scim.post("Groups", okta.okta_create_group("Contractors")).status_code == 201
    # The account was not touched beyond leaving the group.
    assert Account.objects.get(pk=user["id"]).active
