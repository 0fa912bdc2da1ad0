"""Reads of the accounts app."""
from django.db.models import Count, Q

from .models import TOMBSTONE_MARK, Account, Group, Organization


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


def group_names(organization: Organization) -> dict[int, str]:
    """The organization's groups, id -> display name, in name order."""
    return dict(Group.objects.filter(organization=organization).order_by("display_name")
                .values_list("pk", "display_name"))
