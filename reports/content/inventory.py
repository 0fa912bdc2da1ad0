"""Who and what a report speaks of: the organization's catalog, the accounts it governed, its groups' members."""
from collections import defaultdict
from datetime import datetime

from django.db.models import Q

from accounts.models import Account, Organization
from governance.engine import Target
from governance.models import AIFeature, DataCategory, Purpose
from governance.selectors import catalog_entries

NO_GROUP = 0


def catalog_of(organization: Organization) -> dict:
    """Names, kinds and Fides keys of the organization's catalog, by key."""
    return {
        "data_categories": {row["key"]: {"name": row["name"], "kind": row["kind"], "fides_key": row["fides_key"]}
                            for row in catalog_entries(DataCategory, organization).values("key", "name", "kind",
                                                                                          "fides_key")},
        "purposes": {row["key"]: {"name": row["name"], "fides_key": row["fides_key"], "is_ai": row["is_ai"]}
                     for row in catalog_entries(Purpose, organization).values("key", "name", "fides_key", "is_ai")},
        "features": {row["key"]: {"name": row["name"], "fides_key": row["fides_key"]}
                     for row in catalog_entries(AIFeature, organization).values("key", "name", "fides_key")},
    }


def governed_accounts(organization: Organization, end_at: datetime) -> list[int]:
    """Accounts provisioned before the period's end and not deactivated before it.

    An account keeps no history of its `active` flag, so an inactive account counts as deactivated
    before the end when its row last changed before the end.
    """
    return list(Account.objects.filter(organization=organization, created_at__lt=end_at)
                .filter(Q(active=True) | Q(updated_at__gte=end_at))
                .order_by("pk").values_list("pk", flat=True).iterator(chunk_size=10_000))


def members_by_group(account_groups: dict, account_ids) -> dict[int, list[int]]:
    """Group id -> its accounts among `account_ids`; NO_GROUP holds the accounts in none."""
    members = defaultdict(list)
    for account_id in account_ids:
        for group_id in account_groups.get(account_id, ()) or (NO_GROUP,):
            members[group_id].append(account_id)
    return members


def target_label(target: Target, names: dict) -> str:
    if target.is_feature:
        return names["features"].get(target.feature, {}).get("name", target.feature)
    return pair_label(target.data_category, target.purpose, names)


def pair_label(category: str, purpose: str, names: dict) -> str:
    category_name = names["data_categories"].get(category, {}).get("name", category)
    purpose_name = names["purposes"].get(purpose, {}).get("name", purpose)
    return f"{category_name} → {purpose_name}"
