"""Every malformed or impossible request is a SCIM error (application/scim+json), and writes nothing."""
import pytest

from accounts.models import Account, AccountGroup, ApiToken, Group
from accounts.services import revoke_api_token
from audit.actors import SYSTEM

from ..conftest import token_client
from ..factories import AccountFactory, GroupFactory
from .conftest import ScimClient, assert_scim_error, patch_op, written_rows
from .idp_requests import okta_create_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(org):
    return AccountFactory(organization=org, user_name="ada@acme.test", email="ada@acme.test", display_name="Ada",
                          external_id="00u-ada")


@pytest.fixture
def sales(org, ada):
    group = GroupFactory(organization=org, display_name="Sales", external_id="g-sales")
    AccountGroup.objects.create(account=ada, group=group)
    return group


def refused(response, status, scim_type, before):
    body = assert_scim_error(response, status, scim_type)
    assert written_rows() == before, "a refused request wrote something"
    return body


USER_BODIES = [
    ('{"userName": ', 400, "invalidSyntax"),  # malformed JSON
    ('[{"userName": "x@acme.test"}]', 400, "invalidSyntax"),  # not an object
    ('{"userName": "x@acme.test", "active": NaN}', 400, "invalidSyntax"),
    ({"displayName": "No Name"}, 400, "invalidValue"),
    ({"userName": "   "}, 400, "invalidValue"),
    ({"userName": 42}, 400, "invalidValue"),
    ({"userName": "x@acme.test", "active": "maybe"}, 400, "invalidValue"),
    ({"userName": "x@acme.test", "emails": [{"value": "not an address"}]}, 400, "invalidValue"),
    ({"userName": "x@acme.test", "emails": "x@acme.test"}, 400, "invalidValue"),
    ({"userName": "x@acme.test", "emails": [{"value": "x@acme.test", "colour": "red"}]}, 400, "invalidValue"),
    ({"userName": "x@acme.test", "favouriteColour": "red"}, 400, "invalidPath"),
    ({"userName": "x@acme.test", "urn:example:unknown:2.0:User": {"x": 1}}, 400, "invalidPath"),
    ({"userName": "x" * 300}, 400, "invalidValue"),
    ({"userName": "x@acme.test", "displayName": "A\u0000B"}, 400, "invalidValue"),
    ({"userName": "x@acme.test#deleted-1"}, 400, "invalidValue"),
    ({"userName": "x@acme.test", "schemas": "urn:ietf:params:scim:schemas:core:2.0:User"}, 400, "invalidSyntax"),
    ({"userName": "x@acme.test",
      "urn:ietf:params:scim:schemas:extension:aigovernance:2.0:User": {"aiFeaturesOptOut": "perhaps"}},
     400, "invalidValue"),
    ({"userName": "ADA@acme.test"}, 409, "uniqueness"),  # userName is unique without regard to case
    ({"userName": "x@acme.test", "externalId": "00u-ada"}, 409, "uniqueness"),
]


@pytest.mark.parametrize("body,status,scim_type", USER_BODIES)
def test_refused_user_creations(scim, ada, body, status, scim_type):
    before = written_rows()
    refused(scim.post("Users", body), status, scim_type, before)


PATCHES = [
    ({"Operations": [{"op": "frobnicate", "path": "displayName", "value": "x"}]}, 400, "invalidSyntax"),
    ({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}, 400, "invalidSyntax"),
    ({"Operations": []}, 400, "invalidSyntax"),
    ({"Operations": ["replace"]}, 400, "invalidSyntax"),
    (patch_op({"op": "replace", "path": "favouriteColour", "value": "red"}), 400, "invalidPath"),
    (patch_op({"op": "replace", "path": "displayName[", "value": "x"}), 400, "invalidPath"),
    (patch_op({"op": "replace", "path": 42, "value": "x"}), 400, "invalidPath"),
    (patch_op({"op": "replace", "path": "displayName.first", "value": "x"}), 400, "invalidPath"),
    (patch_op({"op": "remove"}), 400, "noTarget"),
    (patch_op({"op": "replace", "value": "not an object"}), 400, "invalidValue"),
    (patch_op({"op": "replace", "path": "displayName"}), 400, "invalidValue"),
    (patch_op({"op": "replace", "path": "id", "value": "7"}), 400, "mutability"),
    (patch_op({"op": "replace", "value": {"id": "999999"}}), 400, "mutability"),
    (patch_op({"op": "add", "path": "groups", "value": [{"value": "1"}]}), 400, "mutability"),
    (patch_op({"op": "replace", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z"}), 400, "mutability"),
    (patch_op({"op": "remove", "path": "userName"}), 400, "invalidValue"),
    (patch_op({"op": "replace", "path": "active", "value": "maybe"}), 400, "invalidValue"),
    (patch_op({"op": "replace", "path": "userName", "value": ["a", "b"]}), 400, "invalidValue"),
    (patch_op({"op": "replace", "path": 'emails[type eq "work"].value', "value": "not an address"}), 400,
     "invalidValue"),
    (patch_op({"op": "replace", "path": 'emails[type eq "work"].colour', "value": "red"}), 400, "invalidPath"),
    (patch_op({"op": "replace", "path": 'emails[colour eq "red"].value', "value": "x@acme.test"}), 400,
     "invalidFilter"),
    # The first operation is valid, the second is not: neither is applied.
    (patch_op({"op": "replace", "path": "displayName", "value": "Changed"},
              {"op": "replace", "path": "nope", "value": 1}), 400, "invalidPath"),
]


@pytest.mark.parametrize("body,status,scim_type", PATCHES)
def test_refused_user_patches(scim, ada, body, status, scim_type):
    before = written_rows()
    refused(scim.patch(f"Users/{ada.pk}", body), status, scim_type, before)
    ada.refresh_from_db()
    assert ada.display_name == "Ada"


def test_refused_renames_and_replacements(scim, org, ada):
    AccountFactory(organization=org, user_name="bob@acme.test", external_id="00u-bob")
    before = written_rows()
    refused(scim.patch(f"Users/{ada.pk}", patch_op({"op": "replace", "path": "userName", "value": "BOB@acme.test"})),
            409, "uniqueness", before)
    refused(scim.put(f"Users/{ada.pk}", {**okta_create_user("ada@acme.test"), "externalId": "00u-bob"}),
            409, "uniqueness", before)
    refused(scim.put(f"Users/{ada.pk}", {**okta_create_user("ada@acme.test"), "id": "999999"}),
            400, "mutability", before)
    refused(scim.put(f"Users/{ada.pk}", {"displayName": "No userName"}), 400, "invalidValue", before)


GROUP_PATCHES = [
    (lambda ids: patch_op({"op": "add", "path": "members", "value": [{"value": "999999"}]}), 400, "invalidValue"),
    (lambda ids: patch_op({"op": "add", "path": "members", "value": [{"value": "abc"}]}), 400, "invalidValue"),
    (lambda ids: patch_op({"op": "add", "path": "members", "value": [{"value": ids["other"]}]}), 400,
     "invalidValue"),
    (lambda ids: patch_op({"op": "add", "path": "members", "value": [{"value": ids["ada"], "type": "Group"}]}), 400,
     "invalidValue"),
    (lambda ids: patch_op({"op": "add", "path": "members", "value": [{"value": ids["ada"], "colour": "red"}]}), 400,
     "invalidValue"),
    (lambda ids: patch_op({"op": "add", "path": "members", "value": "nope"}), 400, "invalidValue"),
    (lambda ids: patch_op({"op": "replace", "path": 'members[value eq "424242"].display', "value": "x"}), 400,
     "noTarget"),
    (lambda ids: patch_op({"op": "replace", "path": "displayName", "value": "Legal"}), 409, "uniqueness"),
    (lambda ids: patch_op({"op": "remove", "path": "displayName"}), 400, "invalidValue"),
    (lambda ids: patch_op({"op": "replace", "path": "members[value eq]", "value": []}), 400, "invalidPath"),
]


@pytest.mark.parametrize("make_body,status,scim_type", GROUP_PATCHES)
def test_refused_group_patches(scim, org, other_org, ada, sales, make_body, status, scim_type):
    GroupFactory(organization=org, display_name="Legal")
    ids = {"ada": str(ada.pk), "other": str(AccountFactory(organization=other_org).pk)}
    before = written_rows()
    refused(scim.patch(f"Groups/{sales.pk}", make_body(ids)), status, scim_type, before)
    assert list(sales.accounts.all()) == [ada]


@pytest.mark.parametrize("body,status,scim_type", [
    ({"members": []}, 400, "invalidValue"),
    ({"displayName": "Sales"}, 409, "uniqueness"),
    ({"displayName": "New", "externalId": "g-sales"}, 409, "uniqueness"),
    ({"displayName": "New", "members": [{"value": "999999"}]}, 400, "invalidValue"),
    ({"displayName": "x" * 201}, 400, "invalidValue"),
    ({"displayName": "New", "members": [{"value": "1", "type": "Group"}]}, 400, "invalidValue"),
    ('{"displayName": "New",', 400, "invalidSyntax"),
])
def test_refused_group_creations(scim, sales, body, status, scim_type):
    before = written_rows()
    refused(scim.post("Groups", body), status, scim_type, before)


class TestProtocol:
    def test_no_token_is_a_401_scim_error(self, client, org):
        response = client.get("/scim/v2/Users")
        assert_scim_error(response, 401)
        assert response["WWW-Authenticate"] == 'Bearer realm="scim"'

    def test_an_api_token_or_a_revoked_token_is_refused(self, org):
        assert_scim_error(ScimClient(token_client(org, scope="api")).get("Users"), 401)
        client = ScimClient(token_client(org, scope="scim"))
        revoke_api_token(token=ApiToken.objects.get(organization=org, scope="scim"), actor=SYSTEM)
        assert_scim_error(client.get("Users"), 401)

    def test_a_token_past_its_rate_gets_a_429_scim_error_with_retry_after(self, scim, other_scim, ada, monkeypatch):
        """Per token: an identity provider in a burst is slowed down; another organization's is not."""
        from django.core.cache import cache

        from accounts.throttling import ScimTokenRateThrottle
        cache.clear()
        monkeypatch.setattr(ScimTokenRateThrottle, "THROTTLE_RATES", {"scim": "3/min"})
        before = written_rows()
        statuses = [scim.get("Users").status_code for _ in range(3)]
        refused = scim.post("Users", okta_create_user("grace@acme.test"))
        others = other_scim.get("Users").status_code
        cache.clear()
        assert statuses == [200, 200, 200] and others == 200
        assert_scim_error(refused, 429)
        assert int(refused["Retry-After"]) > 0
        assert written_rows() == before

    def test_unknown_endpoints_and_ids(self, scim, ada):
        for path in ("Nope", "Users/123/extra/segment", "Users/abc", "Users/99999999999999999999999", "Groups/0",
                     "Schemas/urn:nope", "ResourceTypes/Device", ""):
            assert_scim_error(scim.get(path), 404)

    def test_methods_an_endpoint_does_not_take(self, scim, ada):
        assert_scim_error(scim.put("Schemas", {}), 405)
        assert_scim_error(scim.delete("ServiceProviderConfig"), 405)
        assert_scim_error(scim.delete("Users"), 405)
        assert_scim_error(scim.post(f"Users/{ada.pk}", {}), 405)

    def test_bulk_and_me_are_not_implemented(self, scim):
        assert_scim_error(scim.post("Bulk", {"Operations": []}), 501)
        assert_scim_error(scim.get("Me"), 501)
        assert_scim_error(scim.get(".search"), 405)
        assert_scim_error(scim.post(".search", {"count": 1000, "startIndex": 9500}), 400, "tooMany")

    def test_bad_paging_and_attribute_parameters(self, scim, ada):
        assert_scim_error(scim.get("Users?startIndex=abc"), 400, "invalidValue")
        assert_scim_error(scim.get("Users?count=1.5"), 400, "invalidValue")
        far = scim.get("Users?startIndex=99999999999999999999999").json()
        assert far["Resources"] == [] and far["totalResults"] == 1
        assert_scim_error(scim.get("Users?attributes=userName&excludedAttributes=emails"), 400, "invalidSyntax")
        assert_scim_error(scim.get("Users?filter="), 400, "invalidFilter")
        assert_scim_error(scim.post("Users/.search", {"filter": 7}), 400, "invalidFilter")
        assert_scim_error(scim.post("Users/.search", {"attributes": [1]}), 400, "invalidValue")
        assert_scim_error(scim.get("Schemas?filter=id pr"), 403)

    def test_a_stale_if_match_is_412_and_changes_nothing(self, scim, ada):
        version = scim.get(f"Users/{ada.pk}")["ETag"]
        scim.patch(f"Users/{ada.pk}", patch_op({"op": "replace", "path": "displayName", "value": "Ada L."}))
        before = written_rows()
        for response in (
                scim.patch(f"Users/{ada.pk}", patch_op({"op": "replace", "path": "active", "value": False}),
                           if_match=version),
                scim.put(f"Users/{ada.pk}", okta_create_user("ada@acme.test"), if_match=version),
                scim.delete(f"Users/{ada.pk}", if_match=version)):
            refused(response, 412, None, before)
        ada.refresh_from_db()
        assert ada.active and ada.display_name == "Ada L."

    def test_a_body_too_large_is_413(self, scim, monkeypatch):
        from scim import transport
        monkeypatch.setattr(transport, "MAX_PAYLOAD_BYTES", 100)
        before = written_rows()
        refused(scim.post("Users", {"userName": "x@acme.test", "displayName": "y" * 200}), 413, None, before)
        assert not Account.objects.filter(user_name="x@acme.test").exists()
        assert not Group.objects.exists()
