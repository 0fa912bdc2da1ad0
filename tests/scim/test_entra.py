"""Microsoft Entra ID provisions an organization: the requests of its SCIM tutorial, and its quirks."""
import pytest

from accounts.models import Account

from . import idp_requests as entra
from .conftest import accounts_left, assert_scim_error, memberships_left

pytestmark = pytest.mark.django_db


def test_entra_provisions_users_and_group_memberships(scim, org):
    # "Test connection": a filter that finds nothing, with the query parameter Entra may append.
    probe = scim.get(entra.ENTRA_TEST_CONNECTION + "&aadOptscim062020=true")
    assert probe.status_code == 200 and probe.json()["totalResults"] == 0

    ids = {}
    entra_object_ids = {"ada": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "bob": "8f6d5b6e-3c2d-4f3b-9b2f-0c5e0d1b7a11"}
    for name, object_id in entra_object_ids.items():
        user_name = f"{name}@contoso.test"
        assert scim.get(f'Users?filter=userName eq "{user_name}"').json()["totalResults"] == 0
        created = scim.post("Users", entra.entra_create_user(user_name, object_id, f"{name}.work@contoso.test"))
        assert created.status_code == 201, created.content
        ids[name] = created.json()["id"]
        # Entra also matches on externalId.
        assert scim.get(f'Users?filter=externalId eq "{object_id}"').json()["Resources"][0]["id"] == ids[name]

    # Attribute updates: multi-valued by a filtered path, single-valued by name, capitalised ops.
    changed = scim.patch(f"Users/{ids['ada']}", entra.entra_update_multi_valued("ada.new@contoso.test"))
    assert changed.status_code == 200, changed.content
    assert changed.json()["emails"] == [{"value": "ada.new@contoso.test", "type": "work"}]
    renamed = scim.patch(f"Users/{ids['ada']}", entra.entra_update_single_valued("ada.lovelace@contoso.test"))
    assert renamed.json()["userName"] == "ada.lovelace@contoso.test"
    # Entra's own filter form on an email: emails[type eq "work"].value eq "…".
    by_email = scim.get('Users?filter=emails[type eq "work"].value eq "ada.new@contoso.test"').json()
    assert [r["id"] for r in by_email["Resources"]] == [ids["ada"]]

    # Groups: look up by displayName without members, create, add both, remove one each way.
    assert scim.get(entra.entra_group_lookup("Engineering")).json()["totalResults"] == 0
    group = scim.post("Groups", entra.entra_create_group("Engineering", "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"))
    assert group.status_code == 201, group.content
    gid = group.json()["id"]
    found = scim.get(entra.entra_group_lookup("Engineering")).json()
    assert found["totalResults"] == 1 and "members" not in found["Resources"][0]
    assert scim.patch(f"Groups/{gid}", entra.entra_add_members(ids["ada"], ids["bob"])).status_code == 200
    assert memberships_left(org) == {("Engineering", "ada.lovelace@contoso.test"), ("Engineering", "bob@contoso.test")}
    assert scim.patch(f"Groups/{gid}", entra.entra_remove_members(ids["bob"])).status_code == 200
    assert memberships_left(org) == {("Engineering", "ada.lovelace@contoso.test")}
    assert scim.patch(f"Groups/{gid}", entra.entra_add_members(ids["bob"])).status_code == 200
    assert scim.patch(f"Groups/{gid}", entra.entra_remove_member_by_filter(ids["ada"])).status_code == 200
    # Removing someone already gone is not an error: Entra's view may lag.
    assert scim.patch(f"Groups/{gid}", entra.entra_remove_member_by_filter(ids["ada"])).status_code == 200
    assert scim.patch(f"Groups/{gid}", entra.entra_rename_group("Engineering EU")).status_code == 200

    # Disable Bob with a string boolean; delete Ada.
    disabled = scim.patch(f"Users/{ids['bob']}", entra.ENTRA_DISABLE_AS_STRING)
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert scim.get('Users?filter=userName eq "bob@contoso.test"').json()["Resources"][0]["active"] is False
    assert scim.delete(f"Users/{ids['ada']}").status_code == 204
    assert_scim_error(scim.get(f"Users/{ids['ada']}"), 404)
    assert scim.get('Users?filter=userName eq "ada.lovelace@contoso.test"').json()["totalResults"] == 0

    # Left: Bob, disabled, in the renamed group; Ada's account kept (deactivated, name retired).
    ada_pk = int(ids["ada"])
    assert accounts_left(org) == {
        ("bob@contoso.test", False, "bob.work@contoso.test", "givenName familyName",
         "8f6d5b6e-3c2d-4f3b-9b2f-0c5e0d1b7a11"),
        (f"ada.lovelace@contoso.test#deleted-{ada_pk}", False, "ada.new@contoso.test", "givenName familyName", None),
    }
    assert memberships_left(org) == {("Engineering EU", "bob@contoso.test")}


def test_a_deleted_user_can_be_provisioned_again_as_a_new_account(scim, org):
    body = entra.entra_create_user("carol@contoso.test", "c-1", "carol@contoso.test")
    first = scim.post("Users", body).json()["id"]
    assert scim.delete(f"Users/{first}").status_code == 204
    assert_scim_error(scim.delete(f"Users/{first}"), 404)
    again = scim.post("Users", body)
    assert again.status_code == 201 and again.json()["id"] != first
    assert Account.objects.filter(organization=org).count() == 2


def test_entra_disables_with_a_boolean_too(scim, org):
    uid = scim.post("Users", entra.entra_create_user("dan@contoso.test", "d-1", "dan@contoso.test")).json()["id"]
    assert scim.patch(f"Users/{uid}", entra.ENTRA_DISABLE).json()["active"] is False
    assert Account.objects.get(pk=uid).active is False


def test_a_path_less_operation_keyed_by_attribute_paths(scim, org):
    """Older Entra jobs send one path-less operation whose keys are attribute paths."""
    uid = scim.post("Users", entra.entra_create_user("erin@contoso.test", "e-1", "erin@contoso.test")).json()["id"]
    body = {"schemas": [entra.PATCH], "Operations": [{"op": "Replace", "value": {
        "displayName": "Erin Example", "name.familyName": "Example",
        'emails[type eq "work"].value': "erin.example@contoso.test",
        f"{entra.ENTERPRISE}:department": "Finance"}}]}
    changed = scim.patch(f"Users/{uid}", body)
    assert changed.status_code == 200, changed.content
    account = Account.objects.get(pk=uid)
    assert (account.display_name, account.email) == ("Erin Example", "erin.example@contoso.test")
