"""Decisions: may this account's data of this category be used for this purpose at this instant?

Allowed iff the effective policy allows the category x purpose and, where the purpose needs
each person's own consent for that kind of data, the account holds a valid consent at the
instant (granted before it, not revoked, not stale). A flow naming several accounts is allowed
only if it is allowed for each. Pure: no ORM here.
"""
from __future__ import annotations

import copy
from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from .consent import Basis, ConsentIndex
from .engine import Effective, PolicySnapshot, Target, resolve
from .memberships import MembershipHistory


class AccountDecision(NamedTuple):
    account_id: int
    allowed: bool
    policy: Effective
    consent: Basis | None  # None where no individual consent is needed (or the policy already denies)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    accounts: tuple[AccountDecision, ...]
    at: datetime
    policy_version: int

    @property
    def blocking(self) -> tuple[AccountDecision, ...]:
        return tuple(d for d in self.accounts if not d.allowed)


class CompiledPolicy:
    """An organization's policy at one version, ready to answer many decisions fast.

    The value of a category x purpose for an account depends only on the rules that could touch
    it: those on the pair itself, on the features that read the pair, and on those features'
    other pairs. So values are memoised per pair and per the account's *relevant* groups (the
    ones with such rules; for most accounts none), and per account only where the account has
    such rules of its own. Consent answers come from per-account timelines.
    """

    def __init__(self, snapshot: PolicySnapshot, consents: ConsentIndex, *, valid_until: datetime | None = None,
                 change_instants: list[datetime] | None = None, account_ids: dict[str, int] | None = None,
                 structure_version: int | None = None, memberships: MembershipHistory | None = None):
        self.snapshot = snapshot
        self.account_ids = account_ids or {}  # user_name -> id, as of compilation
        self.consents = consents
        self.policy_version = snapshot.policy_version
        self.structure_version = structure_version  # Organization.structure_version compiled here
        self.valid_until = valid_until  # the next rule expiry: the compiled values change then
        # every instant a rule was saved, replaced, deleted or expired, in order
        self.change_instants = change_instants or []
        catalog = snapshot.catalog
        self._needs_consent = {(c, p) for c in catalog.category_kinds for p in catalog.purpose_keys
                               if catalog.needs_consent(c, p)}
        self._groups_of = snapshot.account_groups
        # the groups of each account over time: a decision as of a past instant uses the groups of then
        self.memberships = memberships or MembershipHistory(current=snapshot.account_groups)
        self._relevant_groups, self._relevant_accounts = self._dependencies(snapshot)
        self._values: dict[tuple, Effective] = {}

    @staticmethod
    def _dependencies(snapshot: PolicySnapshot):
        """Per pair: the groups and the accounts having a rule that can change its value."""
        catalog = snapshot.catalog
        groups_by_target, accounts_by_target = {}, {}
        for group_id, rules in snapshot.group_rules.items():
            for target in rules:
                groups_by_target.setdefault(target, set()).add(group_id)
        for account_id, rules in snapshot.account_rules.items():
            for target in rules:
                accounts_by_target.setdefault(target, set()).add(account_id)
        relevant_groups, relevant_accounts = {}, {}
        for category in catalog.category_kinds:
            for purpose in catalog.purpose_keys:
                pair = (category, purpose)
                targets = {Target.of_pair(*pair)}
                for feature in catalog.pair_features.get(pair, ()):
                    targets.add(Target.of_feature(feature))
                    targets.update(Target.of_pair(*other) for other in catalog.feature_pairs.get(feature, ()))
                relevant_groups[pair] = frozenset().union(*(groups_by_target.get(t, ()) for t in targets))
                relevant_accounts[pair] = frozenset().union(*(accounts_by_target.get(t, ()) for t in targets))
        return relevant_groups, relevant_accounts

    def caught_up(self, policy_version: int, *, consents=(), memberships: MembershipHistory | None = None
                  ) -> CompiledPolicy:
        """The same policy at a later version that differs by consent events and group memberships
        alone: the rules and the memoised values (keyed by groups, not by who is in them) are
        shared, the consent index is extended, the memberships replaced; this one stays as it is."""
        caught = copy.copy(self)
        caught.policy_version = policy_version
        if consents:
            caught.consents = self.consents.extended(consents)
        if memberships is not None:
            caught.memberships = memberships
            caught.snapshot = replace(self.snapshot, account_groups=memberships.current,
                                      policy_version=policy_version)
            caught._groups_of = memberships.current
        return caught

    def effective(self, account_id: int, data_category: str, purpose: str,
                  groups: tuple[int, ...] | None = None) -> Effective:
        """The account's value for the pair, in its groups of now or in `groups` (those of another instant)."""
        pair = (data_category, purpose)
        snapshot = self.snapshot
        current = self._groups_of.get(account_id, ())
        if groups is not None and groups != current:  # resolve as if its groups were those
            snapshot = replace(snapshot, account_groups={account_id: groups})
        else:
            groups = current
        relevant = self._relevant_groups.get(pair)
        if relevant is None:  # a key outside the catalog compiled here
            return resolve(snapshot, account_id, Target(None, data_category, purpose))
        key = (pair, tuple(g for g in groups if g in relevant) if relevant else (),
               account_id if account_id in self._relevant_accounts[pair] else 0)
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = resolve(snapshot, account_id, Target(None, data_category, purpose))
        return value

    def decide_account(self, account_id: int, data_category: str, purpose: str, at: datetime) -> AccountDecision:
        policy = self.effective(account_id, data_category, purpose, self.memberships.groups_at(account_id, at))
        if policy.effect != "allow":
            return AccountDecision(account_id, False, policy, None)
        if (data_category, purpose) not in self._needs_consent:
            return AccountDecision(account_id, True, policy, None)
        basis = self.consents.basis(account_id, (data_category, purpose), at)
        return AccountDecision(account_id, basis.valid, policy, basis)

    def decide(self, account_ids, data_category: str, purpose: str, at: datetime) -> Decision:
        decisions = tuple(self.decide_account(a, data_category, purpose, at) for a in account_ids)
        return Decision(all(d.allowed for d in decisions), decisions, at, self.policy_version)

    def covers_rules_at(self, at: datetime) -> bool:
        """Whether the rules compiled here are the ones in force at `at` (no change since)."""
        after_change = not self.change_instants or at >= self.change_instants[-1]
        before_expiry = self.valid_until is None or at < self.valid_until
        return after_change and before_expiry

    def period_of(self, at: datetime) -> int:
        """Which period between two rule changes holds `at` (the rules are constant within one)."""
        return bisect_right(self.change_instants, at)


def policy_reason(user_name: str, decision: AccountDecision) -> dict:
    policy = decision.policy
    reason = {"account": user_name, "code": "policy_allows" if policy.allowed else "policy_denies",
              "decided_by": policy.decided_by,
              "rules": [rule.id for rule in policy.applied]}
    if policy.locked_by is not None:
        reason["locked_by"] = policy.locked_by.id
    if policy.enabled_by:
        reason["enabled_by_features"] = list(policy.enabled_by)
    if policy.denied_pairs:
        reason["denied_data_sharing"] = [pair.target.as_dict() for pair in policy.denied_pairs]
    return reason


def consent_reason(user_name: str, decision: AccountDecision) -> dict:
    basis = decision.consent
    reason = {"account": user_name, "code": f"consent_{basis.state}"}
    record = basis.record
    if record is not None:
        reason.update(consent=record.id, mechanism=record.mechanism, freely_given=record.freely_given,
                      terms_version=record.terms_version, occurred_at=record.occurred_at.isoformat())
        if record.feature:
            reason["via_feature"] = record.feature
    if basis.stale_since is not None:
        reason["stale_since_terms"] = basis.stale_since.version
    return reason


def decision_payload(decision: Decision, user_names: list[str]) -> dict:
    """A decision as the API and the audit trail show it: reasons per account, the blocking ones."""
    reasons, blocking = [], []
    for user_name, account in zip(user_names, decision.accounts):
        reasons.append(policy_reason(user_name, account))
        if account.consent is not None:
            reasons.append(consent_reason(user_name, account))
        if not account.allowed:
            blocking.append(user_name)
    return {"allowed": decision.allowed, "reasons": reasons, "blocking_accounts": blocking,
            "policy_version": decision.policy_version, "at": decision.at}



def blocking_reasons(decision: Decision, user_names: list[str]) -> list[dict]:
    """For each account that blocks a decision, the one reason it blocks: the policy, or its consent."""
    return [policy_reason(name, d) if not d.policy.allowed else consent_reason(name, d)
            for name, d in zip(user_names, decision.accounts) if not d.allowed]
