"""The writes SCIM needs that accounts.services does not have: one group's members, and deletion.
Same pattern: one transaction, audited inside it, the policy version bumped when memberships change.
(The AI-governance extension's writes are in `extension`.)
"""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, AccountGroup, Group
from accounts.services import account_state, bump_policy_version, end_memberships, group_state
from audit import services as audit
from audit.actors import Actor
from audit.models import EventKind

from .resources import TOMBSTONE_MARK, tombstone_name


def _states(account_ids) -> dict[int, dict]:
    """The audit state (fields and group ids) of each account, read in two queries."""
    groups: dict[int, list[int]] = {pk: [] for pk in account_ids}
    for account_id, group_id in AccountGroup.objects.filter(account_id__in=account_ids).values_list(
            "account_id", "group_id"):
        groups[account_id].append(group_id)
    return {account.pk: account_state(account, groups[account.pk])
            for account in Account.objects.filter(pk__in=account_ids)}


@transaction.atomic
def change_group_members(*, group: Group, actor: Actor, add=(), remove=()) -> tuple[list[int], list[int]]:
    """Add and remove members of one group (account ids); returns the ids actually added and removed.

    Each account whose groups change gets its own `account.changed` event (its groups before and
    after), as `update_account` records, so a person's history shows who changed their groups.
    """
    group = Group.objects.select_for_update().get(pk=group.pk)
    organization = group.organization
    add, remove = set(add), set(remove) - set(add)
    wanted = add | remove
    found = set(Account.objects.filter(organization=organization, pk__in=wanted).values_list("pk", flat=True))
    if wanted - found:
        raise ValidationError({"members": f"Not found in this organization: {sorted(wanted - found)[:10]}."})
    current = set(AccountGroup.objects.filter(group=group, account_id__in=wanted).values_list("account_id",
                                                                                              flat=True))
    added, removed = sorted(add - current), sorted(remove & current)
    if not added and not removed:
        return [], []
    before = _states(added + removed)
    now = timezone.now()
    end_memberships(organization, AccountGroup.objects.filter(group=group, account_id__in=removed), now=now)
    AccountGroup.objects.bulk_create([AccountGroup(account_id=pk, group=group, added_at=now) for pk in added],
                                     batch_size=1000)
    # The group's lastModified moves; the accounts' rows are not touched (their meta.version still
    # changes, since it covers their groups). Updating many accounts' rows from concurrent group
    # changes would lock them in differing orders: deadlocks under an IdP's parallel pushes.
    Group.objects.filter(pk=group.pk).update(updated_at=now)
    version = bump_policy_version(organization)
    entries = []
    for pk, state in before.items():
        after = dict(state, groups=sorted(set(state["groups"]) - {group.pk} if pk in removed
                                         else set(state["groups"]) | {group.pk}))
        entries.append((Account(pk=pk), {"before": state, "after": after, "group": group_state(group),
                                         "policy_version": version}))
    audit.record_many(organization=organization, kind=EventKind.ACCOUNT_CHANGED, actor=actor, entries=entries,
                      occurred_at=now)
    return added, removed


@transaction.atomic
def delete_account(*, account: Account, actor: Actor) -> Account:
    """SCIM DELETE of a user: deactivate it, leave its groups, and retire its name and external id.

    Nothing is erased: the row, its consents and its audit trail stay, under a renamed user_name
    (`<name>#deleted-<id>`), so the IdP may provision the same userName again as a new account.
    """
    account = Account.objects.select_for_update().get(pk=account.pk)
    if TOMBSTONE_MARK in account.user_name:
        return account
    for group_id in AccountGroup.objects.filter(account=account).values_list("group_id", flat=True):
        change_group_members(group=Group(pk=group_id, organization=account.organization), actor=actor,
                             remove=[account.pk])
    before = account_state(account, [])
    account.active = False
    account.user_name = tombstone_name(account.user_name, account.pk, Account._meta.get_field("user_name").max_length)
    account.external_id = None
    account.save(update_fields=["active", "user_name", "external_id", "updated_at"])
    bump_policy_version(account.organization)  # the user name is free: compiled policies must forget it
    audit.record(organization=account.organization, kind=EventKind.ACCOUNT_DEACTIVATED, actor=actor,
                 subject_account=account,
                 payload={"action": "deleted", "before": before, "after": account_state(account, [])})
    return account


@transaction.atomic
def delete_group(*, group: Group, actor: Actor) -> Group:
    """SCIM DELETE of a group: its members leave it and it is marked deleted (renamed), never erased.

    Its rules stay in the policy history; with no members left they decide nothing.
    """
    group = Group.objects.select_for_update().get(pk=group.pk)
    if TOMBSTONE_MARK in group.display_name:
        return group
    members = list(AccountGroup.objects.filter(group=group).values_list("account_id", flat=True))
    if members:
        change_group_members(group=group, actor=actor, remove=members)
    before = group_state(group)
    group.display_name = tombstone_name(group.display_name, group.pk,
                                        Group._meta.get_field("display_name").max_length)
    group.external_id = None
    group.save(update_fields=["display_name", "external_id", "updated_at"])
    audit.record(organization=group.organization, kind=EventKind.GROUP_DELETED, actor=actor,
                 payload={"before": before, "after": group_state(group), "members_removed": sorted(members)})
    return group
