"""Reads of the governance app: the catalog, rules, and the snapshot the engine works on."""
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from accounts.models import AccountGroup, Organization

from .engine import Catalog, Effective, PolicySnapshot, RuleRef, Target, effective_policy
from .models import AIFeature, DataCategory, PolicyRule, PolicyRuleVersion, Purpose


def catalog_entries(model, organization: Organization):
    """Global entries plus the organization's own."""
    return model.objects.filter(Q(organization__isnull=True) | Q(organization=organization)).order_by("key")


def load_catalog(organization: Organization) -> Catalog:
    categories = dict(catalog_entries(DataCategory, organization).values_list("key", "kind"))
    purposes = list(catalog_entries(Purpose, organization).values_list("key", "is_ai"))
    pairs = defaultdict(list)
    features = catalog_entries(AIFeature, organization).prefetch_related("data_categories", "purposes")
    for feature in features:
        pairs[feature.key] = tuple(
            (c.key, p.key) for c in feature.data_categories.all() for p in feature.purposes.all())
    return Catalog(
        category_kinds=categories,
        ai_purposes=frozenset(key for key, is_ai in purposes if is_ai),
        feature_pairs=dict(pairs),
        purpose_keys=tuple(key for key, _ in purposes),
    )


def rule_versions_at(organization: Organization, at: datetime):
    """The rule versions in force at `at`: saved by then, not yet replaced, not expired."""
    return (PolicyRuleVersion.objects
            .filter(organization=organization, valid_from__lte=at)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at)))


def build_snapshot(organization: Organization, *, at: datetime | None = None,
                   account_ids: Iterable[int] | None = None) -> PolicySnapshot:
    """The policy of an organization at `at` (default now), for all accounts or only `account_ids`."""
    at = at or timezone.now()
    snapshot = PolicySnapshot(organization_id=organization.pk, at=at,
                              policy_version=organization.policy_version, catalog=load_catalog(organization))
    memberships = AccountGroup.objects.filter(account__organization=organization)
    versions = rule_versions_at(organization, at)
    if account_ids is not None:
        account_ids = list(account_ids)
        memberships = memberships.filter(account_id__in=account_ids)
        versions = versions.filter(Q(rule__account__isnull=True) | Q(rule__account_id__in=account_ids))

    groups = defaultdict(list)
    for account_id, group_id in memberships.values_list("account_id", "group_id").order_by("group_id"):
        groups[account_id].append(group_id)
    snapshot.account_groups = {account_id: tuple(ids) for account_id, ids in groups.items()}

    rows = versions.values_list("rule_id", "rule__scope", "effect", "locked", "rule__group_id", "rule__account_id",
                                "reason", "rule__feature__key", "rule__data_category__key", "rule__purpose__key")
    for rule_id, scope, effect, locked, group_id, account_id, reason, feature, category, purpose in rows:
        target = Target(feature, category, purpose)
        snapshot.add_rule(target, RuleRef(rule_id, scope, effect, locked, group_id, account_id, reason))
    return snapshot


def effective_policy_for(account, *, at: datetime | None = None) -> tuple[PolicySnapshot, list[Effective]]:
    """Every target's effective value for one account, at `at` (default now), with explanations."""
    snapshot = build_snapshot(account.organization, at=at, account_ids=[account.pk])
    return snapshot, effective_policy(snapshot, account.pk)


def live_rules():
    """Rules not deleted (a rule past its expiry is still listed, with its expires_at)."""
    return (PolicyRule.objects.filter(deleted_at__isnull=True)
            .select_related("group", "account", "feature", "data_category", "purpose"))
