"""Whatever an identity provider (or anyone holding its token) sends, the answer is never a server error:
random bodies, PATCH operations and filters get a result or a SCIM error."""
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..factories import AccountFactory, GroupFactory
from .conftest import SCIM_JSON
from .idp_requests import AI

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=20) | st.sampled_from(["True", "False", "work", "User", "Group", "1", "", "\x00"])
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8) | st.sampled_from(["value", "type", "primary",
                                                                                     "$ref", "display"]),
                                             inner, max_size=4), max_leaves=8)
USER_KEYS = ["userName", "displayName", "active", "emails", "externalId", "name", "groups", "schemas", "id", "meta",
             "members", AI, f"{AI}:aiFeaturesOptOut", "urn:ietf:params:scim:schemas:core:2.0:User:userName",
             "name.givenName", 'emails[type eq "work"].value', "password", "title"]
PATHS = ["userName", "displayName", "active", "emails", "emails.value", 'emails[type eq "work"].value',
         'emails[value co "x"]', "members", 'members[value eq "1"]', "members.value", 'members[type eq "User"]',
         "externalId", "id", "meta", "groups", "name.familyName", AI, f"{AI}:aiTrainingConsent",
         'emails.type eq "work"', "members[", "urn:x:y", "$ref", "displayName.x"]
FILTER_TOKENS = ["userName", "displayName", "externalId", "active", "emails", "emails.value", "emails[", "]",
                 "groups", "groups.value", "members", "meta.lastModified", "meta.created", "id", "name.givenName",
                 "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "and", "or", "not", "(", ")",
                 '"a"', '"2026-01-01T00:00:00Z"', "true", "false", "null", "1", '"1"', "type", "value", '"work"']

bodies = st.dictionaries(st.sampled_from(USER_KEYS) | st.text(max_size=10), json_values, max_size=5)
operations = st.fixed_dictionaries({"op": st.sampled_from(["add", "Add", "replace", "Replace", "remove", "Remove"])
                                    | st.text(max_size=6),
                                    "path": st.none() | st.sampled_from(PATHS) | st.text(max_size=12),
                                    "value": json_values})
patches = st.fixed_dictionaries({"Operations": st.lists(operations, min_size=1, max_size=3)}) | json_values
filters = st.lists(st.sampled_from(FILTER_TOKENS), min_size=1, max_size=9).map(" ".join) | st.text(max_size=30)


def answered(response):
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response["Content-Type"] == SCIM_JSON
        assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


@pytest.fixture
def people(org):
    ada = AccountFactory(organization=org, user_name="ada@acme.test")
    group = GroupFactory(organization=org, display_name="Sales")
    return ada, group


@FUZZ
@given(body=bodies)
def test_any_user_body(scim, people, body):
    ada, _ = people
    answered(scim.post("Users", body))
    answered(scim.put(f"Users/{ada.pk}", body))


@FUZZ
@given(body=bodies)
def test_any_group_body(scim, people, body):
    _, group = people
    answered(scim.post("Groups", body))
    answered(scim.put(f"Groups/{group.pk}", body))


@FUZZ
@given(body=patches)
def test_any_patch(scim, people, body):
    ada, group = people
    answered(scim.patch(f"Users/{ada.pk}", body))
    answered(scim.patch(f"Groups/{group.pk}", body))


@FUZZ
@given(expression=filters, attributes=st.none() | st.text(max_size=15), start=st.none() | st.text(max_size=4))
def test_any_query(scim, people, expression, attributes, start):
    query = f"filter={quote(expression)}"
    if attributes is not None:
        query += f"&attributes={quote(attributes)}"
    if start is not None:
        query += f"&startIndex={quote(start)}"
    answered(scim.get(f"Users?{query}"))
    answered(scim.get(f"Groups?{query}"))
    answered(scim.post("Users/.search", {"filter": expression, "attributes": attributes, "startIndex": start}))
