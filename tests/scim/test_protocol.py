"""The protocol around the resources: discovery, projections, ETags, and PATCH semantics (RFC 7644)."""
import json

import pytest

from accounts.models import Account, AccountGroup

from ..factories import AccountFactory, GroupFactory
from .conftest import SCIM_JSON, patch_op
from .idp_requests import AI, USER

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(org):
    return AccountFactory(organization=org, user_name="ada@acme.test", email="ada@acme.test",
                          display_name="Ada Lovelace", external_id="00u-ada")


class TestDiscovery:
    def test_service_provider_config_says_what_is_supported(self, scim):
        config = scim.get("ServiceProviderConfig")
        assert config.status_code == 200 and config["Content-Type"] == SCIM_JSON
        body = config.json()
        assert {k: body[k]["supported"] for k in ("patch", "bulk", "filter", "changePassword", "sort", "etag")} == {
            "patch": True, "bulk": False, "filter": True, "changePassword": False, "sort": False, "etag": True}
        assert body["filter"]["maxResults"] == 1000
        assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"

    def test_resource_types_name_their_schemas_and_the_extension(self, scim):
        listed = scim.get("ResourceTypes").json()
        assert [r["id"] for r in listed["Resources"]] == ["User", "Group"]
        user = scim.get("ResourceTypes/User").json()
        assert user["endpoint"] == "/Users" and user["schema"] == USER
        assert user["schemaExtensions"] == [{"schema": AI, "required": False}]
        assert user["meta"]["location"] == "http://testserver/scim/v2/ResourceTypes/User"

    def test_schemas_document_the_stored_attributes_and_the_extension(self, scim):
        ids = [s["id"] for s in scim.get("Schemas").json()["Resources"]]
        assert ids == [USER, "urn:ietf:params:scim:schemas:core:2.0:Group", AI]
        user = scim.get(f"Schemas/{USER}").json()
        assert [a["name"] for a in user["attributes"]] == ["userName", "displayName", "active", "emails", "groups"]
        user_name = user["attributes"][0]
        assert (user_name["required"], user_name["caseExact"], user_name["uniqueness"]) == (True, False, "server")
        extension = scim.get(f"Schemas/{AI.lower()}").json()
        assert {a["name"]: a["type"] for a in extension["attributes"]} == {
            "aiFeaturesOptOut": "boolean", "aiTrainingConsent": "boolean"}
        assert all("IdP" in a["description"] for a in extension["attributes"])


class TestRepresentation:
    def test_attributes_and_excluded_attributes(self, scim, ada):
        only = scim.get(f"Users/{ada.pk}?attributes=userName,emails.value,META.lastModified").json()
        assert set(only) == {"schemas", "id", "userName", "emails", "meta"}
        assert only["emails"] == [{"value": "ada@acme.test"}] and set(only["meta"]) == {"lastModified"}
        qualified = scim.get(f"Users/{ada.pk}?attributes={USER}:displayName").json()
        assert set(qualified) == {"schemas", "id", "displayName"}
        without = scim.get(f"Users/{ada.pk}?excludedAttributes=emails,meta,id").json()
        assert "emails" not in without and "meta" not in without and without["id"] == str(ada.pk)  # id always
        listed = scim.get("Users?attributes=externalId").json()["Resources"]
        assert listed == [{"schemas": [USER], "id": str(ada.pk), "externalId": "00u-ada"}]

    def test_etags_follow_every_visible_change(self, scim, org, ada):
        first = scim.get(f"Users/{ada.pk}")
        assert first["ETag"] == first.json()["meta"]["version"] and first["ETag"].startswith('W/"')
        assert scim.get(f"Users/{ada.pk}", if_none_match=first["ETag"]).status_code == 304
        AccountGroup.objects.create(account=ada, group=GroupFactory(organization=org, display_name="Sales"))
        second = scim.get(f"Users/{ada.pk}")
        assert second["ETag"] != first["ETag"]  # a membership changes the user's representation
        assert scim.get(f"Users/{ada.pk}", if_none_match=first["ETag"]).status_code == 200
        ok = scim.patch(f"Users/{ada.pk}", patch_op({"op": "replace", "path": "displayName", "value": "Ada L."}),
                        if_match=second["ETag"])
        assert ok.status_code == 200 and ok["ETag"] != second["ETag"]
        assert scim.patch(f"Users/{ada.pk}", patch_op({"op": "replace", "path": "active", "value": False}),
                          if_match="*").status_code == 200

    def test_json_is_accepted_under_either_content_type(self, client, scim):
        response = scim.client.post("/scim/v2/Users", data=json.dumps({"userName": "x@acme.test"}),
                                    content_type="application/json")
        assert response.status_code == 201 and response["Content-Type"] == SCIM_JSON


class TestPatch:
    def test_emails_by_path_filter_and_value(self, scim, org):
        uid = scim.post("Users", {"userName": "bea@acme.test"}).json()["id"]
        added = scim.patch(f"Users/{uid}", patch_op(
            {"op": "add", "path": 'emails[type eq "work"].value', "value": "bea@acme.test"}))
        assert added.json()["emails"] == [{"value": "bea@acme.test", "type": "work"}]
        replaced = scim.patch(f"Users/{uid}", patch_op(
            {"op": "replace", "path": "emails", "value": [{"value": "home@bea.test", "type": "home"},
                                                          {"value": "bea@work.test", "type": "work"}]}))
        assert replaced.json()["emails"] == [{"value": "bea@work.test", "type": "work"}]  # the work one is kept
        primary = scim.patch(f"Users/{uid}", patch_op({"op": "replace", "path": "emails", "value": [
            {"value": "home@bea.test", "type": "home", "primary": True}, {"value": "bea@work.test", "type": "work"}]}))
        assert primary.json()["emails"] == [{"value": "home@bea.test", "type": "work"}]  # the primary one wins
        removed = scim.patch(f"Users/{uid}", patch_op({"op": "remove", "path": 'emails[value eq "HOME@bea.test"]'}))
        assert "emails" not in removed.json()
        assert Account.objects.get(pk=uid).email == ""

    def test_simple_attributes_add_replace_remove(self, scim, ada):
        url = f"Users/{ada.pk}"
        assert scim.patch(url, patch_op({"op": "Add", "path": "externalId", "value": "00u-new"})).json()[
            "externalId"] == "00u-new"
        assert "displayName" not in scim.patch(url, patch_op({"op": "Remove", "path": "displayName"})).json()
        both = scim.patch(url, patch_op({"op": "replace", "value": {"displayName": "Ada", "active": False}}))
        assert (both.json()["displayName"], both.json()["active"]) == ("Ada", False)
        ada.refresh_from_db()
        assert (ada.external_id, ada.display_name, ada.active) == ("00u-new", "Ada", False)

    def test_a_patch_that_changes_nothing_writes_nothing(self, scim, ada):
        from audit.models import OutboxEntry
        before = OutboxEntry.objects.count()
        same = patch_op({"op": "replace", "value": {"userName": "ada@acme.test", "active": True,
                                                    "displayName": "Ada Lovelace"}})
        assert scim.patch(f"Users/{ada.pk}", same).status_code == 200
        assert OutboxEntry.objects.count() == before

    def test_group_members_replace_and_put_semantics(self, scim, org):
        people = [AccountFactory(organization=org) for _ in range(3)]
        ids = [str(p.pk) for p in people]
        gid = scim.post("Groups", {"displayName": "Team", "members": [{"value": ids[0]}]}).json()["id"]
        replaced = scim.patch(f"Groups/{gid}", patch_op(
            {"op": "replace", "path": "members", "value": [{"value": ids[1]}, {"value": ids[2]}]}))
        assert sorted(m["value"] for m in replaced.json()["members"]) == sorted(ids[1:])
        cleared = scim.patch(f"Groups/{gid}", patch_op({"op": "remove", "path": "members"}))
        assert "members" not in cleared.json()
        scim.patch(f"Groups/{gid}", patch_op({"op": "add", "path": "members", "value": {"value": ids[0]}}))
        put = scim.put(f"Groups/{gid}", {"displayName": "Team"})  # a PUT without members empties the group
        assert "members" not in put.json() and not AccountGroup.objects.filter(group_id=gid).exists()

    def test_deactivated_members_stay_members(self, scim, org):
        person = AccountFactory(organization=org)
        gid = scim.post("Groups", {"displayName": "Team", "members": [{"value": str(person.pk)}]}).json()["id"]
        scim.patch(f"Users/{person.pk}", patch_op({"op": "replace", "value": {"active": False}}))
        assert [m["value"] for m in scim.get(f"Groups/{gid}").json()["members"]] == [str(person.pk)]
