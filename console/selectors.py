"""Reads behind the console's pages.

Each page calls a handful of these; each does a fixed number of queries, whatever the number of
accounts: per-account work (effective values, consent bases) happens in Python over the
organization's compiled policy (`governance.selectors.compiled_policy`), which the decision API
keeps warm in every process anyway. The overview counts over every account and the last 90 days
of exposure: it keeps those counts per process (`OverviewState`) and brings them up to date from
what changed since its previous request.
"""
from __future__ import annotations

import gc
import threading
from bisect import bisect_right
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Account, AccountGroup, Group, PastMembership
from audit.models import AuditDigest, AuditEvent, ChainHead, EventKind, OutboxEntry, SigningKey
from audit.selectors import events_of, latest_digest, verify_chain
from audit.signing import verify_signature
from flows.models import ExposureRollup, ExposureSeen, FlowAccount, TelemetryFlow, Verdict
from governance.consent import MISSING, REVOKED, STALE, VALID, ConsentRecord
from governance.engine import CUSTOMER_CONTENT, Target, catalog_default, resolve
from governance.models import AIFeature, ConsentEvent, DataCategory, Purpose, TermsVersion
from governance.selectors import catalog_entries, compiled_policy, consent_events, live_rules

PERIODS = (7, 30, 90)
# Above this many events the audit page verifies the chain only when asked to.
AUTO_VERIFY_LIMIT = 50_000
PAGE_SIZE = 50
SHORT_PURPOSES = {"ai.training.first_party": "vendor's models", "ai.training.third_party": "third parties' models",
                  "ai.inference": "AI features", "service.provision": "service", "service.improvement": "improvement",
                  "security.fraud_detection": "security"}
BASIS_KEYS = ("freely_given", "not_freely_given", STALE, REVOKED, MISSING)


@dataclass
class CatalogNames:
    """The organization's catalog as the pages show it: entries in key order, names by key."""

    features: list
    categories: list
    purposes: list
    feature_names: dict = field(default_factory=dict)
    category_names: dict = field(default_factory=dict)
    category_kinds: dict = field(default_factory=dict)
    purpose_names: dict = field(default_factory=dict)

    def target_label(self, target: Target, *, short: bool = False) -> str:
        if target.is_feature:
            return self.feature_names.get(target.feature, target.feature)
        category = self.category_names.get(target.data_category, target.data_category)
        if short:
            return f"{category} → {SHORT_PURPOSES.get(target.purpose, target.purpose)}"
        return f"{category} → {self.purpose_names.get(target.purpose, target.purpose)}"


def catalog_names(organization) -> CatalogNames:
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


def training_purposes(catalog) -> list[str]:
    """The AI purposes that train models (as opposed to running a feature)."""
    return sorted(p for p in catalog.ai_purposes if p.startswith("ai.training"))


def basis_key(basis) -> str:
    """A consent basis in the words of the overview: freely given, not freely given, stale, revoked, missing."""
    if basis.state == VALID:
        return "freely_given" if basis.record.freely_given else "not_freely_given"
    return basis.state


def active_account_ids(organization) -> list[int]:
    return list(Account.objects.filter(organization=organization, active=True).values_list("pk", flat=True)
                .iterator(chunk_size=10_000))


def members_by_group(account_groups: dict, account_ids) -> dict[int, list[int]]:
    """Group id -> its accounts among `account_ids`; 0 holds the accounts in no group."""
    members = defaultdict(list)
    for account_id in account_ids:
        for group_id in account_groups.get(account_id, ()) or (0,):
            members[group_id].append(account_id)
    return members


# --- Overview --------------------------------------------------------------------------------------------

def period(days: int, today: date | None = None) -> tuple[date, date]:
    until = today or timezone.now().date()
    return until - timedelta(days=days - 1), until


def overview(organization, *, days: int, uses: str = "training") -> dict:
    """Everything the overview shows for the last `days` days: headline figures and chart data.

    Counted from what this process keeps of the organization (`OverviewState`), which each request
    brings up to date from what changed since the previous one, so a request reads a handful of
    rows, not the organization's flows, exposure records or accounts.
    """
    names = catalog_names(organization)
    compiled = compiled_policy(organization)
    now = timezone.now()  # after compiling: every consent the compiled policy holds lies before it
    since, until = period(days, now.date())
    catalog = compiled.snapshot.catalog
    training = training_purposes(catalog)
    groups = dict(Group.objects.filter(organization=organization).order_by("display_name")
                  .values_list("pk", "display_name"))
    terms = list(TermsVersion.objects.filter(organization=organization).order_by("effective_at")
                 .values("version", "effective_at", "requires_reconsent"))
    latest_reconsent = next((t for t in reversed(terms) if t["requires_reconsent"] and t["effective_at"] <= now),
                            None)
    rules = organization.policy_rules.filter(deleted_at__isnull=True).count()
    use_filter = {"training": set(training), "ai": set(catalog.ai_purposes)}.get(uses)

    state = overview_state(organization)
    with state.lock:
        state.refresh(organization, compiled, names, now, since)
        cells = state.flows.cells(since, until, groups)
        shown = [c for c in cells if use_filter is None or c["purpose"] in use_filter]
        targets = heatmap_targets(compiled, cells, training)
        tallies = state.tallies
        tallies.count(pairs={(c["data_category"], c["purpose"]) for c in shown
                             if catalog.needs_consent(c["data_category"], c["purpose"])}, targets=targets)
        violations = state.flows.violations_between(since, until)
        content, generated = state.exposure.trained(since)
        return {
            "since": since, "until": until, "days": days, "names": names,
            "figures": {
                "accounts": state.accounts.total, "active": len(state.accounts.active), "groups": len(groups),
                "rules": rules, "trained_content": content, "trained_generated": generated,
                "violations": sum(violations.values()),
                **tallies.consent_figures(), "latest_reconsent": latest_reconsent,
            },
            "cells": cells,
            "table": basis_table(shown, catalog, tallies),
            "heatmap": exposure_matrix(names, groups, targets, tallies),
            "treemap": treemap_groups(groups, tallies, since),
            "timeline": activity(since, until, violations, tallies.consents_per_day, terms),
        }


def heatmap_targets(compiled, cells: list[dict], training: list[str]) -> list[Target]:
    """The heatmap's columns: every AI feature, and up to ten training uses (those of the period's
    flows and of the rules)."""
    snapshot = compiled.snapshot
    pairs = {(c["data_category"], c["purpose"]) for c in cells if c["purpose"] in training}
    for rules in (snapshot.org_rules, *snapshot.group_rules.values(), *snapshot.account_rules.values()):
        pairs.update((t.data_category, t.purpose) for t in rules if not t.is_feature and t.purpose in training)
    if not pairs:
        pairs = {(c, p) for c in ("content.chat", "content.transcript") for p in training[:1]}
    targets = [Target.of_feature(key) for key in sorted(snapshot.catalog.feature_pairs)]
    return targets + [Target.of_pair(c, p) for p, c in sorted((p, c) for c, p in pairs)][:10]


def basis_table(cells: list[dict], catalog, tallies: Tallies) -> list[dict]:
    """The exposure cells, biggest first, each with the consent basis of its group's active accounts today.

    Where the purpose needs no individual consent for that kind of data, the basis is the
    organization's switch alone (`needs_consent` False).
    """
    rows = []
    for cell in sorted(cells, key=lambda c: (-c["volume"], -c["flows"], c["group_name"])):
        pair = (cell["data_category"], cell["purpose"])
        needs = catalog.needs_consent(*pair)
        basis = tallies.basis(pair, cell["group"] or 0) if needs else None
        rows.append({**cell, "needs_consent": needs, "basis": basis})
    return rows


def exposure_matrix(names: CatalogNames, groups: dict, targets: list[Target], tallies: Tallies) -> dict:
    """Share of each group's active accounts whose data may be used now, per AI feature and training use:
    from the effective policy (and, where the purpose needs it, each person's consent)."""
    rows = [("All accounts", None)] + [(name, group_id) for group_id, name in groups.items()
                                       if tallies.sizes[group_id]]
    shares, counts = [], []
    for _, key in rows:
        size = tallies.sizes[key]
        hits = [tallies.exposed[target][key] for target in targets]
        shares.append([round(h / size, 4) if size else None for h in hits])
        counts.append([f"{h} of {size}" for h in hits])
    return {"groups": [f"{name} ({tallies.sizes[key]})" for name, key in rows],
            "targets": [names.target_label(t, short=True) for t in targets], "shares": shares, "counts": counts}


def treemap_groups(groups: dict, tallies: Tallies, since: date) -> list[dict]:
    """Per group: its active accounts, those whose data reached AI training in the period, and AI only."""
    result = []
    for group_id, name in groups.items():
        ai, training = tallies.reached_since(group_id, since)
        result.append({"name": name, "members": tallies.sizes[group_id], "training": training,
                       "ai_only": ai - training})
    return sorted(result, key=lambda g: -g["members"])


def violations_per_day(organization, since: date, until: date | None = None) -> dict[date, int]:
    """Flows judged violations, per day: counted from the flows themselves (a rollup counts a flow once
    per group it touched), which the (organization, verdict, occurred_at) index serves."""
    rows = TelemetryFlow.objects.filter(organization=organization, verdict=Verdict.VIOLATION,
                                        occurred_at__gte=_start_of(since))
    if until is not None:
        rows = rows.filter(occurred_at__lt=_start_of(until + timedelta(days=1)))
    rows = rows.annotate(day=TruncDate("occurred_at")).values("day").annotate(n=Count("id"))
    return {row["day"]: row["n"] for row in rows}


def _start_of(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=timezone.get_current_timezone())


def activity(since: date, until: date, violations: dict, consents: Counter, terms: list[dict]) -> dict:
    """Consent grants and revocations, and flow violations, per day of the period."""
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    start = _start_of(since)
    return {"days": days, "grants": [consents[d, "grant"] for d in days],
            "revocations": [consents[d, "revoke"] for d in days],
            "violations": [violations.get(d, 0) for d in days],
            "terms": [t for t in terms if t["effective_at"] >= start]}


# --- What the overview keeps per process ------------------------------------------------------------------

def overview_state(organization) -> OverviewState:
    """This process's `OverviewState` of the organization (keyed by its creation too: a test's
    rolled-back organization may come back under the same id)."""
    key = (organization.pk, organization.created_at)
    with _states_lock:
        state = _states.pop(key, None) or OverviewState()
        _states[key] = state
        while len(_states) > STATES_KEPT:
            del _states[next(iter(_states))]
    return state


class OverviewState:
    """What the overview counts for one organization, kept by this process between requests.

    Four parts, each brought up to date by `refresh` from what changed since the previous request:
    the accounts (which are active), the flows' rollup cells and violations per day (`FlowDays`,
    by the chain head), each account's latest exposure days (`ExposureDays`, by exposure record
    id) and the counts over accounts from the compiled policy (`Tallies`, by the accounts it
    changed for). Built on the organization's first overview in the process; a lock makes one
    request at a time read or change it.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.accounts: AccountSet | None = None
        self.flows: FlowDays | None = None
        self.exposure: ExposureDays | None = None
        self.tallies: Tallies | None = None

    def refresh(self, organization, compiled, names: CatalogNames, now: datetime, since: date) -> None:
        """Bring every part up to `compiled` and `now`, for periods from `since`."""
        today = now.date()
        self.accounts = AccountSet.read(organization, self.accounts)
        built = self.refresh_flows(organization, since, today, cells=True)
        catalog = compiled.snapshot.catalog
        kinds = (frozenset(k for k, kind in names.category_kinds.items() if kind == CUSTOMER_CONTENT),
                 frozenset(training_purposes(catalog)), frozenset(catalog.ai_purposes))
        moved = {}
        if self.exposure is None or self.exposure.kinds != kinds or since < self.exposure.first:
            self.exposure, self.tallies = ExposureDays(organization, kinds, min(since, _first_day(today)), today), None
            built = True
        else:
            moved = self.exposure.catch_up(organization, today)
        tallies = self.tallies
        if (tallies is None or tallies.rules is not compiled.snapshot.org_rules or since < tallies.first
                or (tallies.valid_until is not None and now >= tallies.valid_until)):
            self.tallies = Tallies(organization, compiled, self.accounts.active, self.exposure.last, now,
                                   min(since, _first_day(today)))
            built = True
        else:
            tallies.update(organization, compiled, self.accounts.active, self.exposure.last, now, moved)
        if built:
            # As for the compiled policy: keep the cyclic collector from walking these many objects
            # on every collection (they hold no reference cycles; replacing them still frees them).
            gc.freeze()

    def refresh_flows(self, organization, since: date, today: date, *, cells: bool = False) -> bool:
        """Bring the flows' part up to date (the flows page counts violations from it alone), with the
        rollup cells if asked for; returns whether it was built anew."""
        built = self.flows is None or since < self.flows.first
        if built:
            self.flows = FlowDays(organization, min(since, _first_day(today)))
        else:
            self.flows.catch_up(organization, today)
        if cells and self.flows.days is None:
            self.flows.read_days(organization)
            built = True
        return built


_states: dict[tuple, OverviewState] = {}
_states_lock = threading.Lock()
STATES_KEPT = 64


def forget_overview_states() -> None:
    """Drop what this process keeps for the overview (the next view of each organization counts it all again)."""
    with _states_lock:
        _states.clear()


def _first_day(today: date) -> date:
    """The first day the longest period of the overview shows."""
    return today - timedelta(days=PERIODS[-1] - 1)


@contextmanager
def _one_snapshot():
    """A transaction whose reads all see one snapshot of the database (REPEATABLE READ on PostgreSQL;
    nested in a caller's transaction, that transaction's level holds)."""
    with transaction.atomic():
        if connection.vendor == "postgresql" and len(connection.atomic_blocks) == 1:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


@dataclass(frozen=True)
class AccountSet:
    """The organization's accounts and its active ones. Accounts are never deleted, so while their
    number stands still the ids are the same, and only the inactive ones are read again."""

    total: int
    ids: frozenset
    inactive: frozenset
    active: frozenset

    @classmethod
    def read(cls, organization, known: AccountSet | None) -> AccountSet:
        accounts = Account.objects.filter(organization=organization)
        total = accounts.count()
        inactive = frozenset(accounts.filter(active=False).values_list("pk", flat=True))
        if known is not None and known.total == total:
            return known if known.inactive == inactive else cls(total, known.ids, inactive, known.ids - inactive)
        ids = frozenset(accounts.values_list("pk", flat=True).iterator(chunk_size=10_000))
        return cls(len(ids), ids, inactive, ids - inactive)


FLOW_KINDS = (EventKind.FLOW_PERMITTED, EventKind.FLOW_VIOLATION)


class FlowDays:
    """The exposure rollups' cells and the flows judged violations, per day since `first`.

    A worker writes a batch's flows, their rollups and one chained event per flow in one
    transaction under the organization's chain head, so the head's seq tells whether any of them
    changed, and the flow events after the seq last seen tell on which days: only those days'
    rollup rows are read again, and their violations added.
    """

    def __init__(self, organization, first: date):
        self.first = first
        with _one_snapshot():  # the head and the flows it covers
            self.seq = _chain_seq(organization)
            self.violations = Counter(violations_per_day(organization, first))
        self.days: dict[date, dict] | None = None  # the rollup cells, read when first asked for
        self._keys: dict[tuple, tuple] = {}
        self._totals: dict[tuple[date, date], dict] = {}

    def catch_up(self, organization, today: date) -> None:
        head = _chain_seq(organization)
        if head != self.seq:
            touched = set()
            events = (AuditEvent.objects.filter(organization=organization, kind__in=FLOW_KINDS, seq__gt=self.seq,
                                                seq__lte=head)
                      .annotate(day=TruncDate("occurred_at")).values_list("kind", "day").annotate(n=Count("id")))
            for kind, day, n in events:
                touched.add(day)
                if kind == EventKind.FLOW_VIOLATION and day >= self.first:
                    self.violations[day] += n
            self.seq = head
            touched = sorted(day for day in touched if day >= self.first)
            if touched and self.days is not None:  # read after the head: a day may be ahead, never behind
                fresh = self._read(organization, day__in=touched)
                for day in touched:
                    new, old = fresh.get(day, {}), self.days.get(day, {})
                    for (since, until), totals in self._totals.items():
                        if since <= day <= until:
                            _add_cells(totals, old, -1)
                            _add_cells(totals, new, 1)
                    self.days[day] = new
        stale = _first_day(today)
        if stale > self.first:  # a day went by: forget the days no period shows any more
            self.first = stale
            self.violations = Counter({d: n for d, n in self.violations.items() if d >= stale})
            if self.days is not None:
                self.days = {d: cells for d, cells in self.days.items() if d >= stale}
            self._totals = {}

    def violations_between(self, since: date, until: date) -> dict[date, int]:
        return {day: n for day, n in self.violations.items() if since <= day <= until and n}

    def read_days(self, organization) -> None:
        """Read the rollup cells of every day since `first`."""
        self.days = self._read(organization, day__gte=self.first)

    def cells(self, since: date, until: date, groups: dict) -> list[dict]:
        """The rows of `flows.selectors.exposure` for the period (flows, volume, violations and their
        volume per group x category x purpose x destination), from the rollups."""
        totals = self._totals.get((since, until))
        if totals is None:
            totals = self._totals[since, until] = {}
            for day, cells in self.days.items():
                if since <= day <= until:
                    _add_cells(totals, cells, 1)
        return [{"group": key[0] or None, "group_name": groups.get(key[0], "(no group)"), "data_category": key[1],
                 "purpose": key[2], "destination": key[3], "flows": flows, "volume": volume,
                 "violations": violations, "violation_volume": violation_volume}
                for key, (flows, volume, violations, violation_volume) in sorted(totals.items()) if flows]

    def _read(self, organization, **days) -> dict[date, dict]:
        cells = defaultdict(dict)
        rows = (ExposureRollup.objects.filter(organization=organization, **days)
                .values_list("day", "group_key", "data_category", "purpose", "destination", "verdict", "flows",
                             "volume"))
        keys = self._keys
        for day, *key, verdict, flows, volume in rows.iterator(chunk_size=10_000):
            key = tuple(key)
            key = keys.setdefault(key, key)  # one tuple per cell, whatever the number of days
            cell = cells[day].get(key)
            if cell is None:
                cell = cells[day][key] = [0, 0, 0, 0]
            cell[0] += flows
            cell[1] += volume
            if verdict == Verdict.VIOLATION:
                cell[2] += flows
                cell[3] += volume
        return cells


def _chain_seq(organization) -> int:
    return ChainHead.objects.filter(organization=organization).values_list("seq", flat=True).first() or 0


def _add_cells(totals: dict, cells: dict, sign: int) -> None:
    for key, values in cells.items():
        total = totals.get(key)
        if total is None:
            total = totals[key] = [0, 0, 0, 0]
        for i, value in enumerate(values):
            total[i] += sign * value


class ExposureDays:
    """For each account, the latest day up to today (since `first`) its data reached AI training as
    customer content, AI training as service-generated data, and any AI purpose: from the exposure
    records (ExposureSeen). Whether an account was exposed in a period ending today is whether that
    day falls in it, so distinct accounts over any such period are counted without the records.

    Records inserted since are read by id: a worker inserts an organization's records under its
    chain head, so their ids grow in the order they commit. Records of a day after today (a
    reporter's clock ahead) count from that day on.
    """

    def __init__(self, organization, kinds: tuple[frozenset, frozenset, frozenset], first: date, today: date):
        self.kinds, self.first = kinds, first
        content, training, ai = kinds
        # first: a record inserted while the rest is read is read again later, which changes nothing
        self.seen_id = (ExposureSeen.objects.filter(organization=organization).order_by("-pk")
                        .values_list("pk", flat=True).first() or 0)
        records = ExposureSeen.objects.filter(organization=organization, purpose__in=ai)
        self.last: dict[int, tuple] = {}
        self.content, self.generated = Counter(), Counter()  # day -> accounts whose latest it is
        trained = Q(purpose__in=training)
        rows = (records.filter(day__gte=first, day__lte=today).values("account_id")
                .annotate(content=Max("day", filter=trained & Q(data_category__in=content)),
                          generated=Max("day", filter=trained & ~Q(data_category__in=content)), ai=Max("day"))
                .values_list("account_id", "content", "generated", "ai"))
        for account_id, *days in rows.iterator(chunk_size=10_000):
            self._set(account_id, None, tuple(days))
        self.later = list(records.filter(day__gt=today).values_list("account_id", "day", "data_category", "purpose"))

    def catch_up(self, organization, today: date) -> dict[int, tuple | None]:
        """Take in the records inserted since; returns the accounts whose days moved, with their days before."""
        rows = list(ExposureSeen.objects.filter(organization=organization, pk__gt=self.seen_id,
                                                purpose__in=self.kinds[2])
                    .order_by("pk").values_list("pk", "account_id", "day", "data_category", "purpose"))
        if rows:
            self.seen_id = rows[-1][0]
        later, self.later = self.later, []
        moved = {}
        for account_id, day, category, purpose in [*later, *(row[1:] for row in rows)]:
            if day > today:
                self.later.append((account_id, day, category, purpose))
            elif day >= self.first:
                old = self.last.get(account_id)
                moved.setdefault(account_id, old)
                self._set(account_id, old, self._with(old, day, category, purpose))
        return {account_id: old for account_id, old in moved.items() if self.last.get(account_id) != old}

    def trained(self, since: date) -> tuple[int, int]:
        """Accounts whose customer content, and whose service data, reached AI training since `since`."""
        return (sum(n for day, n in self.content.items() if day >= since),
                sum(n for day, n in self.generated.items() if day >= since))

    def _with(self, days: tuple | None, day: date, category: str, purpose: str) -> tuple:
        content, generated, ai = days or (None, None, None)
        if purpose in self.kinds[1]:
            if category in self.kinds[0]:
                content = max(content or day, day)
            else:
                generated = max(generated or day, day)
        return content, generated, max(ai or day, day)

    def _set(self, account_id: int, old: tuple | None, new: tuple) -> None:
        if old == new:
            return
        for counter, i in ((self.content, 0), (self.generated, 1)):
            before, after = old and old[i], new[i]
            if before != after:
                if before:
                    counter[before] -= 1
                if after:
                    counter[after] += 1
        self.last[account_id] = new


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
        self.valid_until = _next_reconsent(compiled.consents, at)
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
        self.consents_per_day = Counter({(day, action): n for day, action, n in _consents_per_day(
            organization, first, Q(policy_version__lte=self.version) | Q(policy_version__isnull=True))})

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
            since_version = Q(policy_version__gt=self.version, policy_version__lte=compiled.policy_version)
            self.consents_per_day.update({(day, action): n for day, action, n in _consents_per_day(
                organization, self.first, since_version)})
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


def _next_reconsent(index, at: datetime) -> datetime | None:
    """When the next terms version requiring re-consent takes effect after `at` (bases change then)."""
    upcoming = [times[i] for times, _ in index.reconsent.values() if (i := bisect_right(times, at)) < len(times)]
    return min(upcoming, default=None)


def _consents_per_day(organization, first: date, versions: Q):
    return (ConsentEvent.objects.filter(versions, organization=organization, occurred_at__gte=_start_of(first))
            .annotate(day=TruncDate("occurred_at")).values_list("day", "action").annotate(n=Count("id")))


# --- Policy ------------------------------------------------------------------------------------------------

def policy_matrix(organization) -> dict:
    """The organization's switches: per feature and per category x purpose, the organization-level
    value (its rule, or the catalog default) and how many group and account overrides exist."""
    names = catalog_names(organization)
    catalog = compiled_policy(organization).snapshot.catalog
    rules = list(live_rules().filter(organization=organization).order_by("scope", "id"))
    org_rules, overrides = {}, defaultdict(Counter)
    for rule in rules:
        target = _rule_target(rule)
        if rule.scope == "organization":
            org_rules[target] = rule
        else:
            overrides[target][rule.scope] += 1

    def cell(target: Target) -> dict:
        rule = org_rules.get(target)
        return {"target": target, "rule": rule, "effect": rule.effect if rule else catalog_default(catalog, target),
                "locked": bool(rule and rule.locked), "groups": overrides[target]["group"],
                "accounts": overrides[target]["account"],
                "needs_consent": not target.is_feature and catalog.needs_consent(target.data_category, target.purpose)}

    features = [{"entry": f, **cell(Target.of_feature(f.key))} for f in names.features]
    matrix = [{"category": c, "cells": [cell(Target.of_pair(c.key, p.key)) for p in names.purposes]}
              for c in names.categories]
    return {"names": names, "features": features, "matrix": matrix,
            "overrides": [r for r in rules if r.scope != "organization"]}


def _rule_target(rule) -> Target:
    if rule.feature_id:
        return Target.of_feature(rule.feature.key)
    return Target.of_pair(rule.data_category.key, rule.purpose.key)


def rule_of(organization, rule_id) -> object | None:
    return live_rules().filter(organization=organization, pk=rule_id).first()


# --- Accounts ----------------------------------------------------------------------------------------------

def account_list(organization, *, query: str = "", group: Group | None = None, active: bool | None = None):
    accounts = Account.objects.filter(organization=organization)
    if query:
        accounts = accounts.filter(Q(user_name__icontains=query) | Q(display_name__icontains=query)
                                   | Q(email__icontains=query) | Q(external_id=query))
    if group is not None:
        accounts = accounts.filter(groups=group)
    if active is not None:
        accounts = accounts.filter(active=active)
    return accounts.prefetch_related("groups").order_by("user_name")


def groups_of(organization):
    return Group.objects.filter(organization=organization).order_by("display_name")


def account_consents(account, compiled, now: datetime) -> list[dict]:
    """The account's consent history, newest first, each with whether it is freely given and stale."""
    catalog = compiled.snapshot.catalog
    index = compiled.consents
    rows = []
    for event in consent_events(account.organization).filter(account=account).order_by("-occurred_at", "-id")[:200]:
        pairs = (catalog.feature_pairs.get(event.feature.key, ()) if event.feature_id
                 else [(event.data_category.key, event.purpose.key)])
        stale = None
        if event.action == "grant":
            record = ConsentRecord(event.pk, event.action, event.mechanism, event.occurred_at,
                                   terms_effective_at=event.terms_version.effective_at if event.terms_version else None)
            stale = next((s.version for pair in pairs if (s := index.stale_since(pair, record, now))), None)
        rows.append({"event": event, "stale": stale})
    return rows


def account_memberships(account) -> list[dict]:
    """The account's groups over time, newest first: today's with their start, then the ended ones."""
    rows = [{"group": name, "since": added_at, "until": None} for name, added_at in
            AccountGroup.objects.filter(account=account).values_list("group__display_name", "added_at")]
    rows += [{"group": name, "since": started_at, "until": ended_at} for name, started_at, ended_at in
             PastMembership.objects.filter(account=account).values_list("group__display_name", "started_at",
                                                                        "ended_at")]
    return sorted(rows, key=lambda row: (row["until"] is None, row["until"] or row["since"], row["since"]),
                  reverse=True)


def account_flows(account, limit: int = 30) -> list[FlowAccount]:
    return list(FlowAccount.objects.filter(account=account).select_related("flow").order_by("-flow_id")[:limit])


def group_names(organization) -> dict[int, str]:
    return dict(Group.objects.filter(organization=organization).values_list("pk", "display_name"))


# --- Terms and consent -------------------------------------------------------------------------------------

def terms_overview(organization, *, version: str | None = None) -> dict:
    """Terms versions, and for a re-consent version, per group: who renewed, revoked, or is still stale."""
    now = timezone.now()
    terms = list(TermsVersion.objects.filter(organization=organization).order_by("effective_at")
                 .annotate(consent_count=Count("consents", distinct=True))
                 .prefetch_related("covers__data_category", "covers__purpose"))
    reconsent = [t for t in terms if t.requires_reconsent]
    chosen = next((t for t in reconsent if t.version == version), reconsent[-1] if reconsent else None)
    coverage = []
    if chosen is not None:
        compiled = compiled_policy(organization)
        groups = group_names(organization)
        members = members_by_group(compiled.snapshot.account_groups, active_account_ids(organization))
        status = reconsent_status(compiled.consents, [(c.data_category.key, c.purpose.key) for c in chosen.covers.all()],
                                  chosen.effective_at, now)
        everyone = set().union(*members.values()) if members else set()
        rows = [("All accounts", everyone)] + [(name, members.get(group_id, ()))
                                               for group_id, name in sorted(groups.items(), key=lambda item: item[1])]
        for name, ids in rows:
            tally = Counter(status[a] for a in ids if a in status)
            coverage.append({"group": name, "renewed": tally["renewed"], "revoked": tally["revoked"],
                             "pending": tally["pending"], "total": sum(tally.values())})
    return {"terms": terms, "reconsent": reconsent, "chosen": chosen, "coverage": coverage, "now": now}


def reconsent_status(index, pairs: list[tuple[str, str]], effective_at: datetime, now: datetime) -> dict[int, str]:
    """For each account that held a valid consent to a covered pair when the version took effect:
    `renewed` (granted again under it or later terms), `revoked`, or `pending` (still stale)."""
    before = effective_at - timedelta(microseconds=1)
    at = max(now, effective_at)
    status = {}
    for account_id, timelines in index.timelines.items():
        outcomes = []
        for pair in pairs:
            if pair not in timelines or index.basis(account_id, pair, before).state != VALID:
                continue
            latest = index.basis(account_id, pair, at).record
            if latest.action == "revoke":
                outcomes.append("revoked")
            elif latest.terms_effective_at is not None and latest.terms_effective_at >= effective_at:
                outcomes.append("renewed")
            else:
                outcomes.append("pending")
        if outcomes:
            status[account_id] = next(o for o in ("pending", "revoked", "renewed") if o in outcomes)
    return status


# --- Audit trail and flows ---------------------------------------------------------------------------------

def audit_events(organization, *, kind: str = "", account: str = "", since: date | None = None,
                 until: date | None = None, before_seq: int | None = None) -> list[AuditEvent]:
    events = events_of(organization).select_related("subject_account")
    if kind:
        events = events.filter(kind=kind)
    if account:
        events = events.filter(subject_account__user_name=account)
    if since:
        events = events.filter(occurred_at__gte=_start_of(since))
    if until:
        events = events.filter(occurred_at__lt=_start_of(until + timedelta(days=1)))
    if before_seq:
        events = events.filter(seq__lt=before_seq)
    return list(events.order_by("-seq")[:PAGE_SIZE + 1])


def chain_status(organization, *, verify: bool) -> dict:
    """The chain head, pending outbox rows, the latest signed digest (its signature checked), and a
    full verification when asked for or when the chain is small enough to check on every view."""
    head = ChainHead.objects.filter(organization=organization).values_list("seq", "hash").first() or (0, "")
    pending = OutboxEntry.objects.filter(organization_id=organization.pk).count()
    digest = latest_digest(organization)
    digest_valid = None
    if digest is not None:
        pem = SigningKey.objects.filter(fingerprint=digest.key_fingerprint).values_list("public_key_pem",
                                                                                      flat=True).first()
        digest_valid = bool(pem) and verify_signature(pem, digest.body, digest.signature)
    verification = None
    automatic = head[0] <= AUTO_VERIFY_LIMIT
    if verify or automatic:
        verification = verify_chain(organization)
    return {"head_seq": head[0], "head_hash": head[1], "pending": pending, "digest": digest,
            "digest_valid": digest_valid, "verification": verification, "automatic": automatic,
            "digests": AuditDigest.objects.filter(organization=organization).count()}


def flow_list(organization, *, verdict: str = "", data_category: str = "", purpose: str = "", destination: str = "",
              account: Account | None = None, since: date | None = None, until: date | None = None,
              cursor: tuple[datetime, int] | None = None) -> list[TelemetryFlow]:
    flows = TelemetryFlow.objects.filter(organization=organization)
    if verdict:
        flows = flows.filter(verdict=verdict)
    if data_category:
        flows = flows.filter(data_category=data_category)
    if purpose:
        flows = flows.filter(purpose=purpose)
    if destination:
        flows = flows.filter(destination=destination)
    if account is not None:
        flows = flows.filter(pk__in=FlowAccount.objects.filter(account=account).values("flow_id"))
    if since:
        flows = flows.filter(occurred_at__gte=_start_of(since))
    if until:
        flows = flows.filter(occurred_at__lt=_start_of(until + timedelta(days=1)))
    if cursor:
        flows = flows.filter(Q(occurred_at__lt=cursor[0]) | Q(occurred_at=cursor[0], pk__lt=cursor[1]))
    return list(flows.defer("batch").order_by("-occurred_at", "-pk")[:PAGE_SIZE + 1])


def violation_count(organization, since: date, until: date) -> int:
    """Flows judged violations in [since, until] (until today at the latest), from the overview's counts."""
    state = overview_state(organization)
    with state.lock:
        state.refresh_flows(organization, since, timezone.now().date())
        return sum(state.flows.violations_between(since, until).values())


def account_by_user_name(organization, user_name: str) -> Account | None:
    return Account.objects.filter(organization=organization, user_name=user_name).first()
