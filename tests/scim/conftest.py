import pytest

from ..conftest import token_client

SCIM_JSON = "application/scim+json"


class ScimClient:
    """An IdP's view of the server: JSON in, JSON out, under /scim/v2/."""

    def __init__(self, client):
        self.client = client

    def _call(self, method, path, body=None, **headers):
        kwargs = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
        if body is not None:
            import json
            kwargs.update(data=body if isinstance(body, (str, bytes)) else json.dumps(body), content_type=SCIM_JSON)
        return getattr(self.client, method)(f"/scim/v2/{path.lstrip('/')}", **kwargs)

    def get(self, path, **headers):
        return self._call("get", path, **headers)

    def post(self, path, body, **headers):
        return self._call("post", path, body, **headers)

    def put(self, path, body, **headers):
        return self._call("put", path, body, **headers)

    def patch(self, path, body, **headers):
        return self._call("patch", path, body, **headers)

    def delete(self, path, **headers):
        return self._call("delete", path, **headers)


@pytest.fixture
def scim(org):
    """An identity provider holding a `scim` token of `org`."""
    return ScimClient(token_client(org, scope="scim"))


@pytest.fixture
def other_scim(other_org):
    return ScimClient(token_client(other_org, scope="scim"))


def patch_op(*operations):
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


def assert_scim_error(response, status, scim_type=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == SCIM_JSON
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status) and body["detail"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def accounts_left(organization):
    """Every account of the organization as (userName, active, email, displayName, externalId)."""
    from accounts.models import Account
    return set(Account.objects.filter(organization=organization)
               .values_list("user_name", "active", "email", "display_name", "external_id"))


def memberships_left(organization):
    """Every membership of the organization as (group displayName, userName)."""
    from accounts.models import AccountGroup
    return set(AccountGroup.objects.filter(group__organization=organization)
               .values_list("group__display_name", "account__user_name"))


def written_rows():
    """How many rows each table a write could touch holds: a refused request changes none of them."""
    from accounts.models import Account, AccountGroup, Group
    from audit.models import OutboxEntry
    from governance.models import ConsentEvent, PolicyRule
    return {model.__name__: model.objects.count()
            for model in (Account, Group, AccountGroup, OutboxEntry, PolicyRule, ConsentEvent)}
