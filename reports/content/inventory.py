"""Who and what a report speaks of: the organization's catalog and the accounts it governed."""
from datetime import datetime

from django.db.models import Q

from accounts.models import Account, Organization
from governance.labels import CatalogLabels
from governance.models import AIFeature, DataCategory, Purpose
from governance.selectors import catalog_entries


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


def labels_of(names: dict) -> CatalogLabels:
    """The catalog's names as `catalog_of` gives them, to write targets with."""
    return CatalogLabels(**{section: {key: entry["name"] for key, entry in entries.items()}
                            for section, entries in names.items()})
