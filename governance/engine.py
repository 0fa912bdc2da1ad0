"""The policy engine: pure functions over a per-organization snapshot. No ORM in here.

Resolution order for one account and one target (DESIGN §2):
  1. the catalog default (any data category -> service.provision: allow, since
     running a meeting on its audio is the service itself; customer content ->
     any AI purpose: deny; anything else: deny; an AI feature is off until a rule
     turns it on);
  2. an organization rule replaces it; if it is locked, stop;
  3. the rules of the account's groups replace it, deny winning between groups;
     if any of them is locked, stop;
  4. an account rule replaces it.
A feature is effective only if its switch allows it and none of its
category x purpose pairs is denied by a rule. A pair that no rule decides (the
catalog default denies it) is allowed while an effective feature reads it for
that purpose: switching a feature on switches on what it needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

ALLOW = "allow"
DENY = "deny"
CUSTOMER_CONTENT = "customer_content"
SERVICE_PROVISION = "service.provision"


class Target(NamedTuple):
    """What a switch governs: an AI feature, or a data category used for a purpose."""

    feature: str | None = None
    data_category: str | None = None
    purpose: str | None = None

    @classmethod
    def of_feature(cls, key: str) -> Target:
        return cls(feature=key)

    @classmethod
    def of_pair(cls, data_category: str, purpose: str) -> Target:
        return cls(data_category=data_category, purpose=purpose)

    @property
    def is_feature(self) -> bool:
        return self.feature is not None

    def as_dict(self) -> dict:
        if self.is_feature:
            return {"feature": self.feature}
        return {"data_category": self.data_category, "purpose": self.purpose}


class RuleRef(NamedTuple):
    """A rule as the engine sees it: enough to decide and to explain."""

    id: int
    scope: str
    effect: str
    locked: bool
    group_id: int | None = None
    account_id: int | None = None
    reason: str = ""


class Effective(NamedTuple):
    """The effective value of one target for one account, with why. (A tuple: cheap to make, in the hot path.)"""

    target: Target
    effect: str
    default: str
    applied: tuple[RuleRef, ...] = ()  # in the order they applied
    locked_by: RuleRef | None = None
    overridden: tuple[RuleRef, ...] = ()  # rules below a lock, which it silenced
    denied_pairs: tuple[Effective, ...] = ()  # for a feature: its pairs that a rule denies
    enabled_by: tuple[str, ...] = ()  # for a pair no rule decides: the effective features that read it

    @property
    def allowed(self) -> bool:
        return self.effect == ALLOW

    @property
    def decided_by(self) -> str:
        """The level whose value stands: default, organization, group, account, feature or data_sharing."""
        if self.denied_pairs:
            return "data_sharing"
        if self.enabled_by:
            return "feature"
        return self.applied[-1].scope if self.applied else "default"


@dataclass(frozen=True)
class Catalog:
    category_kinds: dict[str, str]  # data category key -> kind
    ai_purposes: frozenset[str]
    feature_pairs: dict[str, tuple[tuple[str, str], ...]]  # feature key -> its (category, purpose) pairs
    purpose_keys: tuple[str, ...] = ()
    # purpose key -> the data kinds for which it needs each person's own consent
    consent_kinds: dict[str, frozenset[str]] = field(default_factory=dict)
    pair_features: dict[tuple[str, str], tuple[str, ...]] = field(init=False, repr=False)

    def __post_init__(self):
        index: dict[tuple[str, str], list[str]] = {}
        for feature, pairs in sorted(self.feature_pairs.items()):
            for pair in pairs:
                index.setdefault(pair, []).append(feature)
        object.__setattr__(self, "pair_features", {pair: tuple(keys) for pair, keys in index.items()})

    def training_purposes(self) -> list[str]:
        """The AI purposes that train models (as opposed to running a feature)."""
        return sorted(p for p in self.ai_purposes if p.startswith("ai.training"))

    def needs_consent(self, data_category: str, purpose: str) -> bool:
        return self.category_kinds.get(data_category) in self.consent_kinds.get(purpose, ())

    def targets(self) -> list[Target]:
        features = [Target.of_feature(key) for key in sorted(self.feature_pairs)]
        pairs = [Target.of_pair(c, p) for c in sorted(self.category_kinds) for p in self.purpose_keys]
        return features + pairs


@dataclass
class PolicySnapshot:
    """Everything the engine needs for one organization at one instant, as plain data."""

    organization_id: int
    at: datetime
    policy_version: int
    catalog: Catalog
    org_rules: dict[Target, RuleRef] = field(default_factory=dict)
    group_rules: dict[int, dict[Target, RuleRef]] = field(default_factory=dict)
    account_rules: dict[int, dict[Target, RuleRef]] = field(default_factory=dict)
    account_groups: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def add_rule(self, target: Target, rule: RuleRef) -> None:
        if rule.scope == "organization":
            self.org_rules[target] = rule
        elif rule.scope == "group":
            self.group_rules.setdefault(rule.group_id, {})[target] = rule
        else:
            self.account_rules.setdefault(rule.account_id, {})[target] = rule


def catalog_default(catalog: Catalog, target: Target) -> str:
    """Step 1, the only place it is decided: providing the service may use any data; every other
    use, customer content for AI above all, waits for a rule."""
    if target.is_feature:
        return DENY
    return ALLOW if target.purpose == SERVICE_PROVISION else DENY


def resolve_switch(snapshot: PolicySnapshot, account_id: int, target: Target) -> Effective:
    """Steps 1-4 for one target, without the feature-to-pairs check."""
    default = catalog_default(snapshot.catalog, target)
    effect, applied, locked_by = default, [], None

    org_rule = snapshot.org_rules.get(target)
    if org_rule is not None:
        effect = org_rule.effect
        applied.append(org_rule)
        if org_rule.locked:
            locked_by = org_rule

    group_rules = [rules[target] for group_id in snapshot.account_groups.get(account_id, ())
                   if (rules := snapshot.group_rules.get(group_id)) and target in rules]
    account_rule = snapshot.account_rules.get(account_id, {}).get(target)

    if locked_by is not None:
        overridden = tuple(group_rules) + ((account_rule,) if account_rule else ())
        return Effective(target, effect, default, tuple(applied), locked_by, overridden)

    if group_rules:
        group_rules.sort(key=lambda rule: (rule.effect != DENY, rule.id))  # deny first: it wins
        effect = DENY if group_rules[0].effect == DENY else ALLOW
        applied.extend(group_rules)
        locked_by = next((rule for rule in group_rules if rule.locked), None)
        if locked_by is not None:
            overridden = (account_rule,) if account_rule else ()
            return Effective(target, effect, default, tuple(applied), locked_by, overridden)

    if account_rule is not None:
        effect = account_rule.effect
        applied.append(account_rule)

    return Effective(target, effect, default, tuple(applied))


def resolve(snapshot: PolicySnapshot, account_id: int, target: Target, memo: dict | None = None) -> Effective:
    """The effective value of one target for one account, with its explanation.

    `memo` may carry values already resolved for the same account (or for any account with the
    same groups and no rules of its own), so a feature read by many pairs is resolved once.
    """
    if memo is not None and (value := memo.get(target)) is not None:
        return value
    switch = resolve_switch(snapshot, account_id, target)
    if target.is_feature:
        value = _feature(snapshot, account_id, target, switch)
    elif switch.allowed or switch.applied:
        value = switch
    else:
        enabling = tuple(feature for feature in
                         snapshot.catalog.pair_features.get((target.data_category, target.purpose), ())
                         if resolve(snapshot, account_id, Target.of_feature(feature), memo).allowed)
        value = switch._replace(effect=ALLOW, enabled_by=enabling) if enabling else switch
    if memo is not None:
        memo[target] = value
    return value


def _feature(snapshot: PolicySnapshot, account_id: int, target: Target, switch: Effective) -> Effective:
    if not switch.allowed:
        return switch
    denied = tuple(
        pair for category, purpose in snapshot.catalog.feature_pairs.get(target.feature, ())
        if not (pair := resolve_switch(snapshot, account_id, Target.of_pair(category, purpose))).allowed
        and pair.applied  # only a rule's deny blocks a feature, not a catalog default
    )
    return switch._replace(effect=DENY, denied_pairs=denied) if denied else switch


def effective_policy(snapshot: PolicySnapshot, account_id: int) -> list[Effective]:
    """Every target's effective value for one account."""
    return [resolve(snapshot, account_id, target) for target in snapshot.catalog.targets()]
