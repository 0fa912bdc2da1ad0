"""Reads of the accounts app: organizations, accounts, groups and group memberships."""
from datetime import datetime

from django.db.models import Count, Q

from .models import TOMBSTONE_MARK, Account, AccountGroup, Group, Organization, PastMembership


def organization_overview(organization: Organization) -> dict:
    counts = Account.objects.filter(organization=organization).aggregate(
        accounts=Count("id"), active=Count("id", filter=Q(active=True)))
    return {**counts, "groups": Group.objects.filter(organization=organization).count(),
            "rules": organization.policy_rules.filter(deleted_at__isnull=True).count()}


def account_ids_by_user_name(organization: Organization, user_names) -> dict[str, int]:
    """The ids of the organization's accounts named; a name no account can hold (a NUL inside, which
    PostgreSQL refuses even to compare) is simply not found, so callers answer "unknown account"."""
    names = [name for name in user_names if "\x00" not in name]
    return dict(Account.objects.filter(organization=organization, user_name__in=names)
                .values_list("user_name", "pk"))


def live_accounts(organization):
    """The organization's accounts but the deleted ones (see TOMBSTONE_MARK)."""
    return Account.objects.filter(organization=organization).exclude(user_name__contains=TOMBSTONE_MARK)


def live_groups(organization):
    """The organization's groups but the deleted ones."""
    return Group.objects.filter(organization=organization).exclude(display_name__contains=TOMBSTONE_MARK)


def account_count(organization: Organization) -> int:
    """The organization's accounts, active or not (accounts are never deleted)."""
    return Account.objects.filter(organization=organization).count()


def account_ids(organization: Organization) -> frozenset[int]:
    """Every account id of the organization, read in chunks."""
    return frozenset(Account.objects.filter(organization=organization).values_list("pk", flat=True)
                     .iterator(chunk_size=10_000))


def inactive_account_ids(organization: Organization) -> frozenset[int]:
    """The organization's deactivated accounts (usually few)."""
    return frozenset(Account.objects.filter(organization=organization).filter(active=False)
                     .values_list("pk", flat=True))


def active_account_ids(organization: Organization) -> list[int]:
    """The organization's active accounts, read in chunks."""
    return list(Account.objects.filter(organization=organization, active=True).values_list("pk", flat=True)
                .iterator(chunk_size=10_000))


def groups_of(organization: Organization, *, created_before: datetime | None = None):
    """The organization's groups in name order; with `created_before`, only those created before it."""
    groups = Group.objects.filter(organization=organization)
    if created_before is not None:
        groups = groups.filter(created_at__lt=created_before)
    return groups.order_by("display_name")


def group_names(organization: Organization, *, created_before: datetime | None = None) -> dict[int, str]:
    """The organization's groups, id -> display name, in name order (see `groups_of`)."""
    return dict(groups_of(organization, created_before=created_before).values_list("pk", "display_name"))


def account_list(organization: Organization, *, query: str = "", group: Group | None = None,
                 active: bool | None = None):
    """The organization's accounts in user-name order, their groups prefetched: those whose user name,
    display name or e-mail holds `query` (or whose external id is it), in `group`, active or not."""
    accounts = Account.objects.filter(organization=organization)
    if query:
        accounts = accounts.filter(Q(user_name__icontains=query) | Q(display_name__icontains=query)
                                   | Q(email__icontains=query) | Q(external_id=query))
    if group is not None:
        accounts = accounts.filter(groups=group)
    if active is not None:
        accounts = accounts.filter(active=active)
    return accounts.prefetch_related("groups").order_by("user_name")


def account_by_user_name(organization: Organization, user_name: str) -> Account | None:
    return Account.objects.filter(organization=organization, user_name=user_name).first()


def accounts_governed_at(organization: Organization, end_at: datetime) -> list[int]:
    """The ids of the accounts provisioned before `end_at` and not deactivated before it, in id order.

    An account keeps no history of its `active` flag, so an inactive account counts as deactivated
    before `end_at` when its row last changed before it.
    """
    return list(Account.objects.filter(organization=organization, created_at__lt=end_at)
                .filter(Q(active=True) | Q(updated_at__gte=end_at))
                .order_by("pk").values_list("pk", flat=True).iterator(chunk_size=10_000))


def user_names_of(account_ids) -> dict[int, str]:
    """The user names of the accounts `account_ids`, by id (no query for none)."""
    if not account_ids:
        return {}
    return dict(Account.objects.filter(pk__in=account_ids).values_list("pk", "user_name"))


def accounts_with_groups(account_ids) -> dict[int, Account]:
    """The accounts `account_ids` by id, their groups prefetched."""
    return {account.pk: account for account in Account.objects.filter(pk__in=account_ids).prefetch_related("groups")}


def account_memberships(account: Account) -> list[dict]:
    """The account's groups over time, newest first: today's with their start, then the ended ones."""
    rows = [{"group": name, "since": added_at, "until": None} for name, added_at in
            AccountGroup.objects.filter(account=account).values_list("group__display_name", "added_at")]
    rows += [{"group": name, "since": started_at, "until": ended_at} for name, started_at, ended_at in
             PastMembership.objects.filter(account=account).values_list("group__display_name", "started_at",
                                                                        "ended_at")]
    return sorted(rows, key=lambda row: (row["until"] is None, row["until"] or row["since"], row["since"]),
                  reverse=True)
