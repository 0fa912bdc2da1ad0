"""Console roles change and end through services that never leave an organization without an owner."""
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services as accounts
from accounts.models import OrgRole
from audit.actors import SYSTEM

from ..factories import OrganizationFactory, OrgRoleFactory
from ..identity.conftest import events

pytestmark = pytest.mark.django_db


def role_of(org, user):
    return OrgRole.objects.filter(organization=org, user=user).values_list("role", flat=True).first()


def test_an_owner_can_be_demoted_while_another_owner_remains(org):
    first, second = OrgRoleFactory(organization=org, role="owner"), OrgRoleFactory(organization=org, role="owner")
    accounts.change_org_role(organization=org, user=first.user, role="auditor", actor=SYSTEM)
    assert role_of(org, first.user) == "auditor"
    assert events(org, "membership.changed")[-1]["payload"] == {
        "user": first.user.username, "role": "auditor", "before": "owner"}
    assert role_of(org, second.user) == "owner"


def test_the_last_owner_cannot_be_demoted_and_the_error_names_the_role(org):
    owner = OrgRoleFactory(organization=org, role="owner")
    OrgRoleFactory(organization=org, role="admin")
    with pytest.raises(ValidationError) as refused:
        accounts.change_org_role(organization=org, user=owner.user, role="admin", actor=SYSTEM)
    assert "role" in refused.value.message_dict and "last owner" in refused.value.message_dict["role"][0]
    assert role_of(org, owner.user) == "owner"


def test_the_last_owner_cannot_be_removed_and_the_error_names_the_user(org):
    owner = OrgRoleFactory(organization=org, role="owner")
    with pytest.raises(ValidationError) as refused:
        accounts.remove_org_role(organization=org, user=owner.user, actor=SYSTEM)
    assert "user" in refused.value.message_dict
    assert role_of(org, owner.user) == "owner"


def test_an_owner_of_another_organization_does_not_count(org, other_org):
    owner = OrgRoleFactory(organization=org, role="owner")
    OrgRoleFactory(organization=other_org, role="owner")
    with pytest.raises(ValidationError):
        accounts.change_org_role(organization=org, user=owner.user, role="auditor", actor=SYSTEM)


def test_removing_someone_ends_their_role_and_is_audited(org):
    OrgRoleFactory(organization=org, role="owner")
    admin = OrgRoleFactory(organization=org, role="admin")
    accounts.remove_org_role(organization=org, user=admin.user, actor=SYSTEM)
    assert role_of(org, admin.user) is None
    assert events(org, "console_user.removed")[-1]["payload"] == {"user": admin.user.username, "role": "admin"}


def test_a_user_without_a_role_here_cannot_be_changed(org, other_org):
    stranger = OrgRoleFactory(organization=other_org, role="admin")
    with pytest.raises(ValidationError) as refused:
        accounts.change_org_role(organization=org, user=stranger.user, role="owner", actor=SYSTEM)
    assert "user" in refused.value.message_dict
    assert role_of(org, stranger.user) is None


def test_a_demotion_reads_the_organizations_roles_under_lock(org):
    first, _ = OrgRoleFactory(organization=org, role="owner"), OrgRoleFactory(organization=org, role="owner")
    with CaptureQueriesContext(connection) as queries:
        accounts.change_org_role(organization=org, user=first.user, role="admin", actor=SYSTEM)
    reads = [q["sql"] for q in queries if 'FROM "accounts_orgrole"' in q["sql"] and q["sql"].startswith("SELECT")]
    assert reads and (connection.vendor == "sqlite" or "FOR UPDATE" in reads[0])


@pytest.mark.services  # PostgreSQL: SQLite has no row locks to race for
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the next tests find the seeded rows
def test_two_owners_demoted_at_the_same_moment_leave_one_owner():
    """Two requests demoting the last two owners at once: the second waits for the first's lock, then
    sees one owner left and is refused."""
    org = OrganizationFactory()
    owners = [OrgRoleFactory(organization=org, role="owner").user for _ in range(2)]
    start, outcomes = threading.Barrier(2), []

    def demote(user):
        try:
            start.wait()
            accounts.change_org_role(organization=org, user=user, role="admin", actor=SYSTEM)
            outcomes.append("demoted")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(user,)) for user in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["demoted", "refused"]
    assert OrgRole.objects.filter(organization=org, role="owner").count() == 1
