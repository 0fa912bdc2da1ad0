"""Reads of the governance app: the catalog, rules, and the snapshot the engine works on."""
import gc
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Account, AccountGroup, Group, Organization, PastMembership
from accounts.selectors import account_ids_by_user_name

from .consent import ConsentIndex, ConsentRecord, Reconsent
from .decisions import CompiledPolicy, Decision
from .labels import CatalogLabels
from .memberships import MembershipHistory
from .engine import Catalog, Effective, PolicySnapshot, RuleRef, Target, effective_policy, resolve
from .models import (AIFeature, ConsentEvent, DataCategory, PolicyRule, PolicyRuleVersion, Purpose,
                     TermsCoverage, TermsVersion)


SIMULATION_LIST_LIMIT = 1000


def catalog_entries(model, organization: Organization):
    """Global entries plus the organization's own."""
    return model.objects.filter(Q(organization__isnull=True) | Q(organization=organization)).order_by("key")


def load_catalog(organization: Organization) -> Catalog:
    categories = dict(catalog_entries(DataCategory, organization).values_list("key", "kind"))
    purposes = list(catalog_entries(Purpose, organization).values_list("key", "is_ai",
                                                                        "requires_individual_consent_for"))
    pairs = defaultdict(list)
    features = catalog_entries(AIFeature, organization).prefetch_related("data_categories", "purposes")
    for feature in features:
        pairs[feature.key] = tuple(
            (c.key, p.key) for c in feature.data_categories.all() for p in feature.purposes.all())
    return Catalog(
        category_kinds=categories,
        ai_purposes=frozenset(key for key, is_ai, _ in purposes if is_ai),
        feature_pairs=dict(pairs),
        purpose_keys=tuple(key for key, _, _ in purposes),
        consent_kinds={key: frozenset(kinds) for key, _, kinds in purposes},
    )


# Purposes in a word or two, where a label must be short (the overview's heatmap columns)
SHORT_PURPOSES = {"ai.training.first_party": "vendor's models", "ai.training.third_party": "third parties' models",
                  "ai.inference": "AI features", "service.provision": "service", "service.improvement": "improvement",
                  "security.fraud_detection": "security"}


@dataclass
class CatalogNames:
    """The organization's catalog as pages and reports show it: entries in key order, names by key."""

    features: list
    categories: list
    purposes: list
    feature_names: dict = field(default_factory=dict)
    category_names: dict = field(default_factory=dict)
    category_kinds: dict = field(default_factory=dict)
    purpose_names: dict = field(default_factory=dict)

    @property
    def labels(self) -> CatalogLabels:
        return CatalogLabels(self.feature_names, self.category_names, self.purpose_names)

    def target_label(self, target: Target, *, short: bool = False) -> str:
        if short and not target.is_feature:
            return CatalogLabels(purposes=SHORT_PURPOSES, data_categories=self.category_names).target(target)
        return self.labels.target(target)


def catalog_names(organization: Organization) -> CatalogNames:
    """The organization's catalog entries with their names, for labels."""
    features = list(catalog_entries(AIFeature, organization))
    categories = list(catalog_entries(DataCategory, organization))
    purposes = list(catalog_entries(Purpose, organization))
    return CatalogNames(
        features, categories, purposes,
        feature_names={f.key: f.name for f in features},
        category_names={c.key: c.name for c in categories},
        category_kinds={c.key: c.kind for c in categories},
        purpose_names={p.key: p.name for p in purposes},
    )


def catalog_by_key(organization: Organization) -> dict:
    """Names, kinds and Fides keys of the organization's catalog, by key: plain data, as reports state it."""
    return {
        "data_categories": {row["key"]: {"name": row["name"], "kind": row["kind"], "fides_key": row["fides_key"]}
                            for row in catalog_entries(DataCategory, organization).values("key", "name", "kind",
                                                                                          "fides_key")},
        "purposes": {row["key"]: {"name": row["name"], "fides_key": row["fides_key"], "is_ai": row["is_ai"]}
                     for row in catalog_entries(Purpose, organization).values("key", "name", "fides_key", "is_ai")},
        "features": {row["key"]: {"name": row["name"], "fides_key": row["fides_key"]}
                     for row in catalog_entries(AIFeature, organization).values("key", "name", "fides_key")},
    }


def rule_versions_at(organization: Organization, at: datetime):
    """The rule versions in force at `at`: saved by then, not yet replaced, not expired."""
    return (PolicyRuleVersion.objects
            .filter(organization=organization, valid_from__lte=at)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at)))


def load_memberships(organization: Organization, account_ids: list[int] | None = None) -> MembershipHistory:
    """Who is in which group now, and since when; and the memberships that ended."""
    current = AccountGroup.objects.filter(account__organization=organization)
    past = PastMembership.objects.filter(organization=organization)
    if account_ids is not None:
        current, past = current.filter(account_id__in=account_ids), past.filter(account_id__in=account_ids)
    return MembershipHistory.build(
        current.order_by("group_id").values_list("account_id", "group_id", "added_at").iterator(chunk_size=10_000),
        past.values_list("account_id", "group_id", "started_at", "ended_at").iterator(chunk_size=10_000))


def build_snapshot(organization: Organization, *, at: datetime | None = None,
                   account_ids: Iterable[int] | None = None,
                   memberships: MembershipHistory | None = None) -> PolicySnapshot:
    """The policy of an organization at `at` (default now), for all accounts or only `account_ids`.

    The groups are those of `at`: today's when `at` is now, else read from the membership history
    (or from `memberships`, that history loaded already).
    """
    snapshot = PolicySnapshot(organization_id=organization.pk, at=at or timezone.now(),
                              policy_version=organization.policy_version, catalog=load_catalog(organization))
    versions = rule_versions_at(organization, snapshot.at)
    if account_ids is not None:
        account_ids = list(account_ids)
        versions = versions.filter(Q(rule__account__isnull=True) | Q(rule__account_id__in=account_ids))
    memberships = memberships or load_memberships(organization, account_ids)
    if at is None and account_ids is None:
        snapshot.account_groups = memberships.current
    else:
        snapshot.account_groups = {
            account_id: groups for account_id in (memberships.changed_at if account_ids is None else account_ids)
            if (groups := memberships.groups_at(account_id, snapshot.at))}

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


def rule_count(organization: Organization) -> int:
    """The organization's rules not deleted."""
    return organization.policy_rules.filter(deleted_at__isnull=True).count()


def consent_additions(organization: Organization, catalog, events):
    """(account_id, pairs, record) for each consent event of `events`, in time order."""
    rows = (events.filter(organization=organization).order_by("occurred_at", "id")
            .values_list("id", "account_id", "feature__key", "data_category__key", "purpose__key", "action",
                         "mechanism", "occurred_at", "terms_version_id"))
    # One object per distinct string, pair and terms version: 300,000 events share a few dozen. The
    # terms versions are read once, not joined to each event: loading an instant is most of a row's cost.
    shared: dict = {}
    terms_of = {pk: (version, effective_at) for pk, version, effective_at in
                TermsVersion.objects.filter(organization=organization).values_list("pk", "version", "effective_at")}
    pairs_of = {pair: (pair,) for pair in ((c, p) for c in catalog.category_kinds for p in catalog.purpose_keys)}
    for (event_id, account_id, feature, category, purpose, action, mechanism, occurred_at,
         terms_id) in rows.iterator(chunk_size=10_000):
        if feature:
            pairs = catalog.feature_pairs.get(feature, ())
        else:
            pairs = pairs_of.get((category, purpose)) or ((category, purpose),)
        if terms_id is None:
            terms, terms_effective_at = None, None
        else:
            if terms_id not in terms_of:  # published after the read above
                terms_of[terms_id] = TermsVersion.objects.values_list("version", "effective_at").get(pk=terms_id)
            terms, terms_effective_at = terms_of[terms_id]
        yield account_id, pairs, ConsentRecord(
            event_id, shared.setdefault(action, action), shared.setdefault(mechanism, mechanism), occurred_at,
            terms, terms_effective_at, shared.setdefault(feature, feature))


def load_consents(organization: Organization, catalog, *, up_to_version: int | None = None,
                  as_of: datetime | None = None) -> ConsentIndex:
    """The organization's consent timelines, with its re-consent terms: the events it had at policy
    version `up_to_version` (default: all), and of those, the ones that occurred by `as_of` when given."""
    index = reconsent_index(organization)
    events = ConsentEvent.objects.all()
    if up_to_version is not None:
        events = events.filter(Q(policy_version__isnull=True) | Q(policy_version__lte=up_to_version))
    if as_of is not None:
        events = events.filter(occurred_at__lte=as_of)
    for account_id, pairs, record in consent_additions(organization, catalog, events):
        index.add(account_id, pairs, record)
    return index


def compile_policy(organization: Organization) -> CompiledPolicy:
    """Build the organization's compiled policy from the database, as of now."""
    organization.refresh_from_db(fields=["policy_version", "structure_version"])
    memberships = load_memberships(organization)
    snapshot = build_snapshot(organization, memberships=memberships)
    now = snapshot.at
    versions = PolicyRuleVersion.objects.filter(organization=organization)
    valid_until = (versions.filter(valid_to__isnull=True, expires_at__gt=now)
                   .aggregate(next=Min("expires_at"))["next"])
    instants = set()
    for opened, closed, expires in versions.values_list("valid_from", "valid_to", "expires_at"):
        instants.update(t for t in (opened, closed, expires) if t is not None and t <= now)
    account_ids = dict(Account.objects.filter(organization=organization).values_list("user_name", "pk")
                       .iterator(chunk_size=10_000))
    consents = load_consents(organization, snapshot.catalog, up_to_version=organization.policy_version)
    return CompiledPolicy(snapshot, consents, valid_until=valid_until, change_instants=sorted(instants),
                          account_ids=account_ids, structure_version=organization.structure_version,
                          memberships=memberships)


def catch_up(organization: Organization, compiled: CompiledPolicy, version: int) -> CompiledPolicy | None:
    """`compiled` brought to `version` by the consent events and group membership changes made since
    it was built, or None when some version in between is found on neither: a release that did
    not number its changes yet (during a rolling upgrade) moved it, and only compiling again is safe."""
    since = {"policy_version__gt": compiled.policy_version, "policy_version__lte": version}
    events = ConsentEvent.objects.filter(organization=organization, **since)
    joined = AccountGroup.objects.filter(account__organization=organization, **since)
    left = PastMembership.objects.filter(organization=organization, **since)
    made = set()
    for rows in (events, joined, left):
        made.update(rows.values_list("policy_version", flat=True).distinct())
    if len(made) != version - compiled.policy_version:
        return None
    moved = set(joined.values_list("account_id", flat=True)) | set(left.values_list("account_id", flat=True))
    memberships = None
    if moved:
        memberships = compiled.memberships.with_accounts(moved, load_memberships(organization, sorted(moved)))
    return compiled.caught_up(version, consents=list(consent_additions(organization, compiled.snapshot.catalog,
                                                                       events)), memberships=memberships)


_compiled: dict[int, CompiledPolicy] = {}
_compiled_lock = threading.Lock()


def forget_compiled_policies() -> None:
    """Drop this process's compiled policies (tests: a rolled-back test's ids and versions recur)."""
    with _compiled_lock:
        _compiled.clear()


def compiled_policy(organization: Organization) -> CompiledPolicy:
    """The organization's compiled policy, brought up to date whenever a change was committed since.

    The organization's policy_version (bumped in the transaction of every rule, membership,
    consent or terms change) is read on every call, so no process answers from a policy
    older than the last committed change. When only consent events and group memberships changed
    since (its structure_version stands still), the compiled policy takes those in and is not
    rebuilt.
    """
    version, structure = (Organization.objects.values_list("policy_version", "structure_version")
                          .get(pk=organization.pk))
    with _compiled_lock:
        compiled = _compiled.get(organization.pk)
        if compiled is not None and compiled.valid_until is not None and timezone.now() >= compiled.valid_until:
            compiled = None  # a rule expired: the compiled values changed
        if compiled is not None and compiled.policy_version == version:
            return compiled
        if compiled is not None and compiled.structure_version == structure and compiled.policy_version < version:
            caught_up = catch_up(organization, compiled, version)
            if caught_up is not None:
                _compiled[organization.pk] = caught_up
                return caught_up
        compiled = _compiled[organization.pk] = compile_policy(organization)
        # Keep the cyclic collector from walking the compiled policy's many objects again and
        # again; it holds no reference cycles, so replacing it still frees it.
        gc.freeze()
        return compiled


def known_accounts(compiled: CompiledPolicy, organization: Organization, user_names) -> dict[str, int]:
    """Accounts by user_name from the compiled policy; the database only for ones created since."""
    found = {name: compiled.account_ids[name] for name in user_names if name in compiled.account_ids}
    missing = set(user_names) - found.keys()
    if missing:
        found.update(account_ids_by_user_name(organization, missing))
    return found


def policy_at(organization: Organization, at: datetime, account_ids, compiled: CompiledPolicy,
              cache: dict | None = None) -> CompiledPolicy:
    """The compiled policy whose rules are those in force at `at`, for `account_ids` at least.

    Usually the current one. Before the last rule change, the rules of the period between two
    changes that holds `at` are compiled for these accounts (and kept in `cache` by period).
    """
    if compiled.covers_rules_at(at):
        return compiled
    period = compiled.period_of(at)
    if cache is not None and period in cache:
        return cache[period]
    # the groups come from the compiled membership history, as of each decision's own instant
    past = build_snapshot(organization, at=at, account_ids=account_ids, memberships=compiled.memberships)
    past.policy_version = compiled.policy_version
    result = CompiledPolicy(past, compiled.consents, account_ids=compiled.account_ids,
                            memberships=compiled.memberships)
    if cache is not None:
        cache[period] = result
    return result


def decide(organization: Organization, account_ids: list[int], data_category: str, purpose: str,
           at: datetime | None = None, *, compiled: CompiledPolicy | None = None) -> Decision:
    """Decide a flow for one or several accounts, now or as of a past instant."""
    compiled = compiled or compiled_policy(organization)
    at = at or timezone.now()
    policy = policy_at(organization, at, account_ids, compiled)
    return policy.decide(account_ids, data_category, purpose, at)


def reconsent_index(organization: Organization) -> ConsentIndex:
    """Only the re-consent terms of the organization: enough to tell whether a grant is stale."""
    index = ConsentIndex()
    for version, effective_at, category, purpose in (
            TermsCoverage.objects.filter(terms_version__organization=organization,
                                         terms_version__requires_reconsent=True)
            .values_list("terms_version__version", "terms_version__effective_at", "data_category__key",
                         "purpose__key")):
        index.add_reconsent((category, purpose), Reconsent(version, effective_at))
    return index


def terms_by_date(organization: Organization) -> list[dict]:
    """The organization's terms versions in the order they take effect: version, effective_at, requires_reconsent."""
    return list(TermsVersion.objects.filter(organization=organization).order_by("effective_at")
                .values("version", "effective_at", "requires_reconsent"))


def terms_versions_of(organization: Organization, *, effective_before: datetime | None = None,
                      consent_counts: bool = False) -> list[TermsVersion]:
    """The organization's terms versions in the order they take effect (those taking effect before
    `effective_before` when given), what each covers read along (category and purpose); with
    `consent_counts`, each with the number of consents given under it (`consent_count`)."""
    versions = TermsVersion.objects.filter(organization=organization)
    if effective_before is not None:
        versions = versions.filter(effective_at__lt=effective_before)
    if consent_counts:
        versions = versions.annotate(consent_count=Count("consents", distinct=True))
    return list(versions.prefetch_related("covers__data_category", "covers__purpose").order_by("effective_at", "pk"))


def consent_actions_per_day(organization: Organization, *, since: datetime, until: datetime | None = None,
                            up_to_version: int | None = None, after_version: int | None = None):
    """(day, action, count) of the organization's consent events that occurred from `since` (and before
    `until`). With `up_to_version`, only those that policy versions after `after_version` up to
    `up_to_version` made (with no `after_version`, events without a version too)."""
    events = ConsentEvent.objects.filter(organization=organization, occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    if after_version is not None:
        events = events.filter(policy_version__gt=after_version, policy_version__lte=up_to_version)
    elif up_to_version is not None:
        events = events.filter(Q(policy_version__lte=up_to_version) | Q(policy_version__isnull=True))
    return events.annotate(day=TruncDate("occurred_at")).values_list("day", "action").annotate(n=Count("id"))


def consent_actions_by_mechanism(organization: Organization, *, since: datetime, until: datetime):
    """(mechanism, action, count) of the organization's consent events that occurred in [since, until)."""
    return (ConsentEvent.objects.filter(organization=organization, occurred_at__gte=since, occurred_at__lt=until)
            .values_list("mechanism", "action").annotate(n=Count("id")).order_by("mechanism", "action"))


def consent_events(organization: Organization):
    return (ConsentEvent.objects.filter(organization=organization)
            .select_related("account", "feature", "data_category", "purpose", "terms_version"))


def simulate_rule(organization: Organization, *, scope: str, effect: str, locked: bool = False, group=None,
                  account=None, feature=None, data_category=None, purpose=None, **ignored) -> dict:
    """What-if: which active accounts' effective value of the target would change if this rule were set now.

    Nothing is saved. Accounts are evaluated once per distinct set of groups (or per account with
    its own rules), so the cost follows the number of groups, not of people.
    """
    target = Target(feature.key if feature else None, data_category.key if data_category else None,
                    purpose.key if purpose else None)
    before = build_snapshot(organization)
    after = build_snapshot(organization)
    existing = (before.org_rules.get(target) if scope == "organization" else
                before.group_rules.get(group.pk, {}).get(target) if scope == "group" else
                before.account_rules.get(account.pk, {}).get(target))
    after.add_rule(target, RuleRef(existing.id if existing else 0, scope, effect, locked,
                                   group.pk if group else None, account.pk if account else None, "proposed"))
    accounts = list(Account.objects.filter(organization=organization, active=True)
                    .values_list("pk", "user_name").order_by("user_name"))
    group_names = dict(Group.objects.filter(organization=organization).values_list("pk", "display_name"))
    cache: dict[object, tuple[str, str]] = {}
    changed, by_group = [], defaultdict(lambda: {"changed": 0, "to_allow": 0, "to_deny": 0})
    for account_id, user_name in accounts:
        key = account_id if account_id in after.account_rules or account_id in before.account_rules else \
            before.account_groups.get(account_id, ())
        if key not in cache:
            cache[key] = (resolve(before, account_id, target).effect, resolve(after, account_id, target).effect)
        old, new = cache[key]
        if old == new:
            continue
        changed.append({"account": user_name, "before": old, "after": new})
        for group_id in before.account_groups.get(account_id, ()) or (None,):
            row = by_group[group_id]
            row["changed"] += 1
            row["to_allow" if new == "allow" else "to_deny"] += 1
    return {
        "target": target.as_dict(), "scope": scope, "effect": effect, "locked": locked,
        "replaces_rule": existing.id if existing else None,
        "accounts_evaluated": len(accounts), "accounts_changed": len(changed),
        "by_group": [{"group": group_id, "display_name": group_names.get(group_id, "(no group)"), **counts}
                     for group_id, counts in sorted(by_group.items(), key=lambda item: -item[1]["changed"])],
        "accounts": changed[:SIMULATION_LIST_LIMIT],
        "accounts_truncated": len(changed) > SIMULATION_LIST_LIMIT,
    }
