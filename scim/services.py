"""The writes SCIM needs that accounts.services does not have: one group's members, and deletion.
Same pattern: one transaction, audited inside it, the policy version bumped when memberships change.
(The AI-governance extension's writes are in `extension`.)
"""
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, AccountGroup, Group
from accounts.services import account_state, bump_policy_version, end_memberships, group_state
from audit import services as audit
from audit.actors import Actor
from audit.models import EventKind

from .resources import TOMBSTONE_MARK, tombstone_name


class MembershipChange(NamedTuple):
    """What `change_group_members` did: the ids added and removed, and the group and its members after it."""

    added: list[int]
    removed: list[int]
    group: Group
    members: frozenset[int]


@transaction.atomic
def change_group_members(*, group: Group, actor: Actor, add=(), remove=()) -> MembershipChange:
    """Add and remove members of one group (account ids).

    Each account whose groups change gets its own `account.changed` event (its groups before and
    after), as `update_account` records, so a person's history shows who changed their groups.
    The group and its members are read under the group's lock, so the result holds them as this
    change left them (the caller need not read them again).
    """
    locked = Group.objects.select_for_update(of=("self",)).select_related("organization").get(pk=group.pk)
    organization = locked.organization
    add, remove = set(add), set(remove) - set(add)
    wanted = add | remove
    accounts = {account.pk: account for account in Account.objects.filter(organization=organization, pk__in=wanted)}
    if missing := sorted(wanted - accounts.keys()):
        raise ValidationError({"members": f"Not found in this organization: {missing[:10]}."})
    current = set(AccountGroup.objects.filter(group=locked).values_list("account_id", flat=True))
    added, removed = sorted(add - current), sorted(remove & current)
    if not added and not removed:
        return MembershipChange([], [], locked, frozenset(current))
    groups: dict[int, list[int]] = {pk: [] for pk in added + removed}
    for account_id, group_id in AccountGroup.objects.filter(account_id__in=groups).values_list("account_id",
                                                                                              "group_id"):
        groups[account_id].append(group_id)
    now = timezone.now()
    version = bump_policy_version(organization, structure=False)
    end_memberships(organization, AccountGroup.objects.filter(group=locked, account_id__in=removed), now=now,
                    policy_version=version)
    AccountGroup.objects.bulk_create([AccountGroup(account_id=pk, group=locked, added_at=now, policy_version=version)
                                      for pk in added], batch_size=1000)
    # The group's lastModified moves; the accounts' rows are not touched (their meta.version still
    # changes, since it covers their groups). Updating many accounts' rows from concurrent group
    # changes would lock them in differing orders: deadlocks under an IdP's parallel pushes.
    Group.objects.filter(pk=locked.pk).update(updated_at=now)
    locked.updated_at = now
    audit.record_many(organization=organization, kind=EventKind.ACCOUNT_CHANGED, actor=actor, occurred_at=now,
                      entries=[_membership_entry(accounts[pk], group_ids, locked, joined=pk not in removed,
                                                 version=version) for pk, group_ids in groups.items()])
    return MembershipChange(added, removed, locked, frozenset(current - set(removed) | set(added)))


def _membership_entry(account: Account, group_ids, group: Group, *, joined: bool, version: int) -> tuple:
    """The `account.changed` outbox entry of one account joining or leaving one group."""
    state = account_state(account, group_ids)
    after = dict(state, groups=sorted(set(group_ids) | {group.pk} if joined else set(group_ids) - {group.pk}))
    return Account(pk=account.pk), {"before": state, "after": after, "group": group_state(group),
                                    "policy_version": version}


@transaction.atomic
def delete_account(*, account: Account, actor: Actor) -> Account:
    """SCIM DELETE of a user: deactivate it, leave its groups, and retire its name and external id.

    Nothing is erased: the row, its consents and its audit trail stay, under a renamed user_name
    (`<name>#deleted-<id>`), so the IdP may provision the same userName again as a new account.
    """
    account = Account.objects.select_for_update(of=("self",)).select_related("organization").get(pk=account.pk)
    if TOMBSTONE_MARK in account.user_name:
        return account
    organization = account.organization
    # Its groups are left in one pass (their rows locked in id order, as concurrent changes take
    # them), each with the `account.changed` event a removal by change_group_members records.
    groups = list(Group.objects.select_for_update(of=("self",)).filter(accounts=account).order_by("pk"))
    # The user name is free and the groups are left: compiled policies must forget both.
    version = bump_policy_version(organization)
    if groups:
        now = timezone.now()
        end_memberships(organization, AccountGroup.objects.filter(account=account), now=now, policy_version=version)
        Group.objects.filter(pk__in=[group.pk for group in groups]).update(updated_at=now)
        entries, left = [], [group.pk for group in groups]
        for group in groups:
            entries.append(_membership_entry(account, left, group, joined=False, version=version))
            left.remove(group.pk)
        audit.record_many(organization=organization, kind=EventKind.ACCOUNT_CHANGED, actor=actor, entries=entries,
                          occurred_at=now)
    before = account_state(account, [])
    account.active = False
    account.user_name = tombstone_name(account.user_name, account.pk, Account._meta.get_field("user_name").max_length)
    account.external_id = None
    account.save(update_fields=["active", "user_name", "external_id", "updated_at"])
    audit.record(organization=organization, kind=EventKind.ACCOUNT_DEACTIVATED, actor=actor,
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
