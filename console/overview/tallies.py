"""Counts over the organization's accounts from its compiled policy, caught up by the accounts that changed."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from typing import NamedTuple

from governance.consent import REVOKED, STALE, basis_key
from governance.engine import Target, resolve
from governance.selectors import consent_actions_per_day

from ..periods import start_of


class _View(NamedTuple):
    """The state `Tallies` counts an account in: a compiled policy, the active accounts, the accounts'
    exposure days, an instant."""

    compiled: object
    active: frozenset
    last: object  # account id -> its exposure days, or None
    at: datetime


class Tallies:
    """Counts over the organization's accounts: consents in force; per group, its active accounts'
    consent basis for a pair and how many of them may be used now for a feature or pair (from the
    compiled policy); and when each was last exposed to AI (from `ExposureDays`). With the consent
    events per day, which the timeline shows.

    Counted whole for a compiled policy's rules (the first view in a process, after a rule or terms
    change); then `update` counts again only the accounts whose consents, groups, activity or
    exposure days changed, taking out what they counted before. Bases hold from `at` until the next
    re-consent terms take effect (`valid_until`); pairs and targets are counted from when first asked for.
    """

    def __init__(self, organization, compiled, active: frozenset, last: dict, at: datetime, first: date):
        self.rules = compiled.snapshot.org_rules  # shared by every policy caught up from the same compilation
        self.compiled, self.active, self.at, self.first = compiled, active, at, first
        self.valid_until = compiled.consents.next_reconsent(at)
        self.consents = Counter()  # in_force, not_free, stale, stale_accounts
        self.sizes = Counter()  # group (0: in none; None: everyone) -> active accounts
        self.bases: dict[tuple, defaultdict] = {}  # pair -> group -> Counter of the basis keys of its accounts
        self.exposed: dict[Target, Counter] = {}  # target -> group or None -> active accounts it allows now
        self.reached = (defaultdict(Counter), defaultdict(Counter))  # any AI, AI training: group -> day -> accounts
        self._memos: dict = {}  # feature values per (groups, own rules), as in simulate_rule
        view = _View(compiled, active, last.get, at)
        for account_id in compiled.consents.timelines:
            self._count_consents(view, account_id, 1)
        for account_id in active:
            self._count_member(view, account_id, 1)
            self._count_reached(view, account_id, 1)
        self.version = compiled.policy_version
        self.consents_per_day = Counter({(day, action): n for day, action, n in consent_actions_per_day(
            organization, since=start_of(first), up_to_version=self.version)})

    def update(self, organization, compiled, active: frozenset, last: dict, at: datetime, moved: dict) -> None:
        """Bring the counts to `compiled`, `active` and the exposure days (`moved` holds the days before
        of the accounts whose days changed)."""
        old = _View(self.compiled, self.active, lambda a: moved[a] if a in moved else last.get(a), self.at)
        new = _View(compiled, active, last.get, at)
        consented = _changed(self.compiled.consents.timelines, compiled.consents.timelines)
        regrouped = _changed(self.compiled.snapshot.account_groups, compiled.snapshot.account_groups)
        activated = self.active ^ active if self.active is not active else set()
        for account_id in consented:
            self._count_consents(old, account_id, -1)
            self._count_consents(new, account_id, 1)
        for account_id in consented | regrouped | activated:
            self._count_member(old, account_id, -1)
            self._count_member(new, account_id, 1)
        for account_id in regrouped | activated | moved.keys():
            self._count_reached(old, account_id, -1)
            self._count_reached(new, account_id, 1)
        if compiled.policy_version > self.version:
            self.consents_per_day.update({(day, action): n for day, action, n in consent_actions_per_day(
                organization, since=start_of(self.first), after_version=self.version,
                up_to_version=compiled.policy_version)})
            self.version = compiled.policy_version
        self.compiled, self.active, self.at = compiled, active, at

    def count(self, *, pairs, targets) -> None:
        """Count these pairs' bases and these targets' exposure too, if not counted yet."""
        view = _View(self.compiled, self.active, None, self.at)
        new_pairs = [pair for pair in pairs if pair not in self.bases]
        new_targets = [target for target in targets if target not in self.exposed]
        for pair in new_pairs:
            self.bases[pair] = defaultdict(Counter)
        for target in new_targets:
            self.exposed[target] = Counter()
        if new_pairs or new_targets:
            for account_id in self.active:
                self._count_member(view, account_id, 1, pairs=new_pairs, targets=new_targets)

    def consent_figures(self) -> dict:
        """Consents in force now: how many, how many not freely given, how many made stale by newer terms."""
        return {"consents_in_force": self.consents["in_force"], "not_freely_given": self.consents["not_free"],
                "stale": self.consents["stale"], "stale_accounts": self.consents["stale_accounts"]}

    def basis(self, pair: tuple, group: int) -> Counter:
        """The group's active accounts by consent basis for the pair (`basis_key`)."""
        return +self.bases[pair][group]

    def reached_since(self, group: int, since: date) -> tuple[int, int]:
        """The group's active accounts whose data reached any AI purpose, and AI training, since `since`."""
        return tuple(sum(n for day, n in reached[group].items() if day >= since) for reached in self.reached)

    def _count_consents(self, view: _View, account_id: int, sign: int) -> None:
        index = view.compiled.consents
        in_force, not_free, stale = set(), set(), set()
        for pair in index.timelines.get(account_id, ()):
            basis = index.basis(account_id, pair, view.at)
            if basis.record is None or basis.state == REVOKED:
                continue
            in_force.add(basis.record.id)
            if not basis.record.freely_given:
                not_free.add(basis.record.id)
            if basis.state == STALE:
                stale.add(basis.record.id)
        self.consents.update({"in_force": sign * len(in_force), "not_free": sign * len(not_free),
                              "stale": sign * len(stale), "stale_accounts": sign * bool(stale)})

    def _count_member(self, view: _View, account_id: int, sign: int, *, pairs=None, targets=None) -> None:
        if account_id not in view.active:
            return
        groups = view.compiled.snapshot.account_groups.get(account_id, ()) or (0,)
        if pairs is None:  # the account itself, not only new pairs or targets
            self.sizes[None] += sign
            for group in groups:
                self.sizes[group] += sign
        index = view.compiled.consents
        for pair in self.bases if pairs is None else pairs:
            per_group, key = self.bases[pair], basis_key(index.basis(account_id, pair, view.at))
            for group in groups:
                per_group[group][key] += sign
        for target in self.exposed if targets is None else targets:
            if self._allows(view, account_id, target):
                counts = self.exposed[target]
                counts[None] += sign
                for group in groups:
                    counts[group] += sign

    def _count_reached(self, view: _View, account_id: int, sign: int) -> None:
        days = view.last(account_id) if account_id in view.active else None
        if days is None:
            return
        content, generated, ai = days
        training = max(content, generated) if content and generated else content or generated
        for group in view.compiled.snapshot.account_groups.get(account_id, ()) or (0,):
            self.reached[0][group][ai] += sign
            if training:
                self.reached[1][group][training] += sign

    def _allows(self, view: _View, account_id: int, target: Target) -> bool:
        if not target.is_feature:
            return view.compiled.decide_account(account_id, target.data_category, target.purpose, view.at).allowed
        snapshot = view.compiled.snapshot
        signature = (snapshot.account_groups.get(account_id, ()),
                     account_id if account_id in snapshot.account_rules else 0)
        return resolve(snapshot, account_id, target, self._memos.setdefault(signature, {})).allowed


def _changed(before: dict, after: dict) -> set:
    """The keys whose values differ (by identity: the compiled policy copies only what changed)."""
    if before is after:
        return set()
    return {key for key, value in after.items() if before.get(key) is not value} | (before.keys() - after.keys())

