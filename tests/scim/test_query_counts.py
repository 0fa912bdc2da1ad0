"""How many queries each provisioning request costs, so a regression (an N+1, a read after a write,
a check made twice) fails here rather than in the SCIM benchmark. The counts hold whatever the
organization's size or the group's: the token, the reads each request needs, its writes and the
outbox row(s) in one transaction (SAVEPOINT/RELEASE here, BEGIN/COMMIT in production)."""
import pytest

from accounts.models import Account, AccountGroup, Group
from audit.models import EventKind, OutboxEntry

from ..factories import AccountFactory, GroupFactory
from .conftest import patch_op
from .idp_requests import GROUP, okta_create_user, okta_lookup

pytestmark = pytest.mark.django_db

# token; the page of accounts (empty: no count, no render)
LOOKUP_QUERIES = 2
# token; [uniqueness check of userName and externalId, account, outbox row]
CREATE_USER_QUERIES = 6
# token; [uniqueness check of displayName and externalId, group, outbox row]
CREATE_GROUP_QUERIES = 6
# token; group; its members; the accounts joining; [group locked, accounts, members under the lock,
# the accounts' groups, memberships, group's lastModified, policy version (2), outbox rows]
ADD_MEMBERS_QUERIES = 15
# token; the accounts joining; [[uniqueness check, group, outbox row], [the 10 of ADD_MEMBERS]]
CREATE_GROUP_WITH_MEMBERS_QUERIES = 20


@pytest.fixture
def idp(scim):
    scim.get("ServiceProviderConfig")  # the token's first use records it (once a minute at most)
    return scim


@pytest.fixture
def crowd(org):
    """Accounts already provisioned: no count below may grow with them."""
    return AccountFactory.create_batch(60, organization=org)


def group_body(name, member_ids=()):
    return {"schemas": [GROUP], "displayName": name, "externalId": f"00g-{name}",
            "members": [{"value": str(pk)} for pk in member_ids]}


def add_members(member_ids):
    return patch_op({"op": "add", "path": "members", "value": [{"value": str(pk)} for pk in member_ids]})


@pytest.mark.parametrize("user_name", ["nobody@okta.local", "PERSON0@EXAMPLE.TEST"])
def test_a_user_name_lookup_is_the_token_and_one_query(idp, crowd, user_name, django_assert_max_num_queries):
    with django_assert_max_num_queries(LOOKUP_QUERIES + (user_name != "nobody@okta.local") * 2):
        found = idp.get(okta_lookup(user_name))
    assert found.status_code == 200


def test_a_lookup_that_finds_nobody_costs_two_queries(idp, crowd, django_assert_num_queries):
    with django_assert_num_queries(LOOKUP_QUERIES):
        assert idp.get(okta_lookup("nobody@okta.local")).json()["totalResults"] == 0


def test_creating_a_user_checks_uniqueness_once_and_reads_nothing_back(idp, crowd, django_assert_num_queries):
    with django_assert_num_queries(CREATE_USER_QUERIES):
        created = idp.post("Users", okta_create_user("new.person@okta.local"))
    assert created.status_code == 201, created.content
    assert OutboxEntry.objects.filter(kind=EventKind.ACCOUNT_PROVISIONED,
                                      subject_account_id=int(created.json()["id"])).exists()


def test_a_clash_is_found_by_the_same_single_check(idp, crowd, django_assert_max_num_queries):
    with django_assert_max_num_queries(CREATE_USER_QUERIES - 1):  # token; [check]: the two inserts never run
        clash = idp.post("Users", okta_create_user(crowd[0].user_name.upper(), external_id="00u-other"))
    assert clash.status_code == 409 and clash.json()["scimType"] == "uniqueness"
    assert clash.json()["detail"].startswith("userName: ")


def test_creating_an_empty_group_reads_nothing_back(idp, django_assert_num_queries):
    with django_assert_num_queries(CREATE_GROUP_QUERIES):
        created = idp.post("Groups", group_body("Sales"))
    assert created.status_code == 201, created.content
    body = created.json()
    assert idp.get(f"Groups/{body['id']}")["ETag"] == created["ETag"] == body["meta"]["version"]


@pytest.mark.parametrize("size", [1, 40])
def test_creating_a_group_with_members_costs_the_same_for_one_member_or_forty(idp, crowd, size,
                                                                                django_assert_num_queries):
    members = [account.pk for account in crowd[:size]]
    with django_assert_num_queries(CREATE_GROUP_WITH_MEMBERS_QUERIES):
        created = idp.post("Groups", group_body("Sales", members))
    assert created.status_code == 201, created.content
    body = created.json()
    assert [m["value"] for m in body["members"]] == [str(pk) for pk in sorted(members)]
    # What the write answered is what a read answers: same representation, same version.
    read = idp.get(f"Groups/{body['id']}")
    assert read.json() == body and read["ETag"] == created["ETag"]


@pytest.mark.parametrize("size", [1, 40])
def test_adding_members_costs_the_same_for_one_member_or_forty(idp, org, crowd, size, django_assert_num_queries):
    group = GroupFactory(organization=org, display_name="Sales")
    for account in crowd[40:]:  # members already: their number must not show either
        AccountGroup.objects.create(account=account, group=group)
    joining = [account.pk for account in crowd[:size]]
    with django_assert_num_queries(ADD_MEMBERS_QUERIES):
        patched = idp.patch(f"Groups/{group.pk}", add_members(joining))
    assert patched.status_code == 200, patched.content
    assert set(AccountGroup.objects.filter(group=group).values_list("account_id", flat=True)) == (
        {a.pk for a in crowd[40:]} | set(joining))
    read = idp.get(f"Groups/{group.pk}")
    assert read.json() == patched.json() and read["ETag"] == patched["ETag"]
    assert OutboxEntry.objects.filter(kind=EventKind.ACCOUNT_CHANGED).count() == size


def test_removing_members_answers_the_group_as_left(idp, org, crowd, django_assert_max_num_queries):
    group = GroupFactory(organization=org, display_name="Sales")
    for account in crowd[:10]:
        AccountGroup.objects.create(account=account, group=group)
    gone = crowd[3]
    with django_assert_max_num_queries(ADD_MEMBERS_QUERIES + 3):  # ending a membership keeps it as history
        patched = idp.patch(f"Groups/{group.pk}", patch_op({"op": "remove", "path": f'members[value eq "{gone.pk}"]'}))
    assert patched.status_code == 200, patched.content
    assert str(gone.pk) not in {m["value"] for m in patched.json()["members"]}
    read = idp.get(f"Groups/{group.pk}")
    assert read.json() == patched.json() and read["ETag"] == patched["ETag"]


def test_a_patch_that_changes_nothing_writes_nothing(idp, org, crowd, django_assert_num_queries):
    group = GroupFactory(organization=org, display_name="Sales")
    AccountGroup.objects.create(account=crowd[0], group=group)
    with django_assert_num_queries(3):  # token, group, members
        patched = idp.patch(f"Groups/{group.pk}", add_members([crowd[0].pk]))
    assert patched.status_code == 200
    assert Group.objects.get(pk=group.pk).updated_at == group.updated_at
    assert Account.objects.filter(organization=org).count() == len(crowd)


# token; user; [user locked, its groups locked, policy version (2), memberships ended (3), groups'
# lastModified, outbox rows, the user renamed, its outbox row], the transaction's two statements
DELETE_USER_QUERIES = 15


@pytest.mark.parametrize("groups", [1, 4])
def test_deleting_a_user_leaves_all_its_groups_in_one_pass(idp, org, crowd, groups, django_assert_num_queries):
    from accounts.models import PastMembership
    ada = crowd[0]
    held = [GroupFactory(organization=org) for _ in range(groups)]
    for group in held:
        AccountGroup.objects.create(account=ada, group=group)
    with django_assert_num_queries(DELETE_USER_QUERIES):
        assert idp.delete(f"Users/{ada.pk}").status_code == 204
    assert not AccountGroup.objects.filter(account=ada).exists()
    assert PastMembership.objects.filter(account=ada).count() == groups
    # Each group left is its own event, naming the groups before and after, as a PATCH removal records.
    left = [entry.payload for entry in OutboxEntry.objects.filter(kind=EventKind.ACCOUNT_CHANGED,
                                                                  subject_account=ada).order_by("id")]
    ids = sorted(group.pk for group in held)
    assert [(p["group"]["id"], p["before"]["groups"], p["after"]["groups"]) for p in left] == [
        (pk, ids[i:], ids[i + 1:]) for i, pk in enumerate(ids)]
    assert OutboxEntry.objects.filter(kind=EventKind.ACCOUNT_DEACTIVATED, subject_account=ada).count() == 1
