"""Filters (RFC 7644 §3.4.2.2) over Users and Groups: every operator, the grammar, and its refusals."""
from datetime import datetime, timezone
from urllib.parse import quote

import pytest

from accounts.models import Account

from ..factories import AccountFactory, GroupFactory
from .conftest import assert_scim_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(org):
    sales = GroupFactory(organization=org, display_name="Sales", external_id="g-sales")
    legal = GroupFactory(organization=org, display_name="Legal", external_id="g-legal")
    GroupFactory(organization=org, display_name="Empty")
    made = {
        "ada": AccountFactory(organization=org, user_name="Ada@Acme.test", email="ada@acme.test",
                              display_name="Ada Lovelace", external_id="ext-Ada", groups=[sales]),
        "bob": AccountFactory(organization=org, user_name="bob@acme.test", email="bob@work.test",
                              display_name="Bob Builder", external_id="ext-bob", active=False, groups=[sales, legal]),
        "carol": AccountFactory(organization=org, user_name="carol@acme.test", email="", display_name="",
                                external_id=None),
        "dave": AccountFactory(organization=org, user_name="dave@other.test", email="dave@other.test",
                               display_name="Dave", external_id="EXT-dave", groups=[legal]),
    }
    for month, account in enumerate(made.values(), start=1):
        Account.objects.filter(pk=account.pk).update(updated_at=datetime(2026, month, 1, tzinfo=timezone.utc))
    return {"sales": sales.pk, "legal": legal.pk, **{name: a.pk for name, a in made.items()}}


def users(scim, expression):
    response = scim.get(f"Users?filter={quote(expression)}&count=1000")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["totalResults"] == len(body["Resources"])
    return {r["userName"].split("@")[0].lower() for r in body["Resources"]}


def groups(scim, expression):
    response = scim.get(f"Groups?filter={quote(expression)}")
    assert response.status_code == 200, response.content
    return {r["displayName"] for r in response.json()["Resources"]}


USER_CASES = [
    ('userName eq "ada@acme.test"', {"ada"}),  # userName compares without regard to case
    ('userName EQ "ADA@ACME.TEST"', {"ada"}),
    ('USERNAME eq "dave@other.test"', {"dave"}),  # so do attribute names
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "dave@other.test"', {"dave"}),
    ('userName ne "ada@acme.test"', {"bob", "carol", "dave"}),
    ('userName co "ACME"', {"ada", "bob", "carol"}),
    ('userName sw "B"', {"bob"}),
    ('userName ew ".test"', {"ada", "bob", "carol", "dave"}),
    ('userName gt "bob@acme.test"', {"carol", "dave"}),
    ('userName ge "BOB@acme.test"', {"bob", "carol", "dave"}),
    ('userName lt "bob"', {"ada"}),
    ('userName le "bob@acme.test"', {"ada", "bob"}),
    ('displayName co "o"', {"ada", "bob"}),
    ('displayName pr', {"ada", "bob", "dave"}),
    ('not (displayName pr)', {"carol"}),
    ('externalId pr', {"ada", "bob", "dave"}),
    ('externalId eq "ext-Ada"', {"ada"}),
    ('externalId eq "ext-ada"', set()),  # externalId is case-exact
    ('externalId eq null', {"carol"}),
    ('active eq false', {"bob"}),
    ('active eq true and userName sw "a"', {"ada"}),
    ('active eq false or displayName eq "dave"', {"bob", "dave"}),
    # `and` binds tighter than `or`; parentheses change that; `not` applies to a group.
    ('userName sw "a" or userName sw "b" and active eq true', {"ada"}),
    ('(userName sw "a" or userName sw "b") and active eq false', {"bob"}),
    ('not (userName sw "a" or userName sw "b")', {"carol", "dave"}),
    ('emails pr', {"ada", "bob", "dave"}),
    ('emails.value ew "@work.test"', {"bob"}),
    ('emails co "other"', {"dave"}),
    ('emails[type eq "work"]', {"ada", "bob", "dave"}),
    ('emails[type eq "home"]', set()),
    ('emails[type eq "work" and value co "work"]', {"bob"}),
    ('emails[type eq "work"].value eq "bob@work.test"', {"bob"}),  # Entra's form
    ('emails[not (value co "acme")]', {"bob", "dave"}),
    ('groups pr', {"ada", "bob", "dave"}),
    ('not (groups pr)', {"carol"}),
    ('groups[display eq "legal"]', {"bob", "dave"}),
    ('groups[display sw "Sa" or display sw "Le"]', {"ada", "bob", "dave"}),
    ('meta.lastModified gt "2026-01-15T00:00:00Z"', {"bob", "carol", "dave"}),
    ('meta.lastModified le "2026-02-01T00:00:00Z"', {"ada", "bob"}),
    ('meta.lastModified ge "2026-02-01T00:00:00Z" and meta.lastModified lt "2026-04-01T00:00:00Z"', {"bob", "carol"}),
    ('meta.created pr', {"ada", "bob", "carol", "dave"}),
    ('meta.resourceType eq "User"', {"ada", "bob", "carol", "dave"}),
    ('id eq "nope"', set()),
]


@pytest.mark.parametrize("expression,expected", USER_CASES)
def test_user_filters(scim, people, expression, expected):
    assert users(scim, expression) == expected


def test_filters_on_ids_and_group_membership(scim, people):
    sales, legal = people["sales"], people["legal"]
    assert users(scim, f'id eq "{people["ada"]}"') == {"ada"}
    assert users(scim, f'groups.value eq "{sales}"') == {"ada", "bob"}
    assert users(scim, f'groups eq "{legal}"') == {"bob", "dave"}
    # Two values of one multi-valued attribute: each condition may match a different value.
    assert users(scim, f'groups.value eq "{sales}" and groups.value eq "{legal}"') == {"bob"}
    # `ne` on a multi-valued attribute: no value is equal.
    assert users(scim, f'groups.value ne "{sales}"') == {"carol", "dave"}


def test_group_filters(scim, people):
    ada, bob, dave = people["ada"], people["bob"], people["dave"]
    assert groups(scim, 'displayName eq "sales"') == {"Sales"}
    assert groups(scim, 'externalId eq "g-legal"') == {"Legal"}
    assert groups(scim, "members pr") == {"Sales", "Legal"}
    assert groups(scim, "not (members pr)") == {"Empty"}
    assert groups(scim, f'members.value eq "{dave}"') == {"Legal"}
    assert groups(scim, f'members[value eq "{ada}"] or displayName sw "E"') == {"Sales", "Empty"}
    assert groups(scim, 'members[display eq "bob builder"]') == {"Sales", "Legal"}
    assert groups(scim, f'members eq "{bob}" and not (members eq "{dave}")') == {"Sales"}


def test_results_page_with_start_index_and_count(scim, people):
    first = scim.get("Users?startIndex=1&count=3").json()
    second = scim.get("Users?startIndex=4&count=3").json()
    assert first["totalResults"] == second["totalResults"] == 4
    assert (first["itemsPerPage"], second["itemsPerPage"]) == (3, 1)
    assert second["startIndex"] == 4
    ids = [r["id"] for r in first["Resources"] + second["Resources"]]
    assert ids == sorted(ids, key=int, reverse=True) and len(set(ids)) == 4  # newest first, no overlap
    assert scim.get("Users?count=0").json() == {**first, "itemsPerPage": 0, "Resources": [], "startIndex": 1}
    assert scim.get("Users?startIndex=0&count=1").json()["startIndex"] == 1  # below 1 reads as 1
    acme = quote('userName co "acme"')
    filtered = scim.get(f"Users?filter={acme}&count=2").json()
    assert filtered["totalResults"] == 3 and filtered["itemsPerPage"] == 2


def test_search_by_post(scim, people):
    response = scim.post("Users/.search", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": 'userName sw "d"',
        "attributes": ["userName"], "startIndex": 1, "count": 10})
    assert response.status_code == 200
    assert [set(r) for r in response.json()["Resources"]] == [{"schemas", "id", "userName"}]


BAD_FILTERS = [
    'userName eq',  # syntax
    'userName xx "a"',
    '(userName eq "a"',
    'userName eq "a" and',
    'userName eq "a" or or userName eq "b"',
    "userName eq 'a'",  # strings are JSON strings
    'foo eq "x"',  # unknown attribute
    'name.givenName eq "Ada"',  # not stored by this server
    'title eq "CTO"',
    'urn:example:unknown:User:flavour eq "x"',
    'urn:ietf:params:scim:schemas:extension:aigovernance:2.0:User:aiFeaturesOptOut eq true',
    'active eq "maybe"',  # wrong types
    'active gt true',
    'userName eq 5',
    'userName gt true',
    'meta.lastModified gt "yesterday"',
    'meta.lastModified co "2026"',
    'meta.version eq "x"',
    'userName[value eq "x"]',  # a value selection on a single-valued attribute
    'emails[foo eq "x"]',
    'emails[type eq "work" and groups[value eq "1"]]',
    'displayName.sub eq "x"',
    'userName eq "\\u0000"',  # a NUL, which no database column holds
    'id gt "5"',
    'userName eq "' + "x" * 5000 + '"',
]


@pytest.mark.parametrize("expression", BAD_FILTERS)
def test_bad_filters_are_refused(scim, people, expression):
    assert_scim_error(scim.get(f"Users?filter={quote(expression)}"), 400, "invalidFilter")


@pytest.mark.parametrize("expression", ['members.display gt 5', 'displayName eq', 'userName eq "x"', 'groups pr'])
def test_bad_group_filters_are_refused(scim, people, expression):
    assert_scim_error(scim.get(f"Groups?filter={quote(expression)}"), 400, "invalidFilter")


def test_search_over_every_resource_type(scim, people):
    """POST /.search at the root: Users and Groups together; an attribute one type lacks is false for it."""
    both = scim.post(".search", {"filter": 'displayName sw "A" or displayName sw "S" or userName sw "c"'}).json()
    assert {(r["meta"]["resourceType"], r.get("userName") or r["displayName"]) for r in both["Resources"]} == {
        ("User", "Ada@Acme.test"), ("Group", "Sales"), ("User", "carol@acme.test")}
    assert both["totalResults"] == 3
    groups_only = scim.post(".search", {"filter": "members pr", "attributes": ["displayName"]}).json()
    assert sorted(r["displayName"] for r in groups_only["Resources"]) == ["Legal", "Sales"]
    assert all(set(r) == {"schemas", "id", "displayName"} for r in groups_only["Resources"])
    everything = scim.post(".search", {"count": 3}).json()
    assert everything["totalResults"] == 7 and everything["itemsPerPage"] == 3
    assert scim.post(".search", {"filter": 'favouriteColour eq "red"'}).json()["totalResults"] == 0
    assert_scim_error(scim.post(".search", {"filter": 'userName eq 5'}), 400, "invalidFilter")
