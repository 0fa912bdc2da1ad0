"""Reads of the accounts app."""
from django.db.models import Count, Q

from .models import Account, Group, Organization


def organization_overview(organization: Organization) -> dict:
    counts = Account.objects.filter(organization=organization).aggregate(
        accounts=Count("id"), active=Count("id", filter=Q(active=True)))
    return {**counts, "groups": Group.objects.filter(organization=organization).count(),
            "rules": organization.policy_rules.filter(deleted_at__isnull=True).count()}
