"""Reads behind a compliance report: what it states about one organization over one period.

`report_content` returns plain JSON data (dicts, lists, strings, numbers; instants written as the
audit chain writes them), so one content renders to JSON, CSV, HTML and PDF alike, and a report of
a closed period comes out the same every time it is generated. Its figures come from the selectors
the API answers with: the exposure rollups, the flows, the policy engine and the consent timelines.
"""
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone


import orjson
from django.db.models import CharField, Count, Q, Sum
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone

from accounts.models import Account, Group, Organization
from audit.chain import GENESIS_HASH, iso, verify_links
from audit.models import AuditDigest, ChainHead, EventKind, SigningKey
from audit.selectors import event_rows, events_of, public_keys
from audit.signing import verify_signature
from audit.verification import verify_digests
from flows.models import FlowAccount, TelemetryFlow, Verdict
from flows.selectors import exposure
from governance.consent import REVOKED, STALE, VALID, ConsentIndex, ConsentRecord
from governance.engine import Catalog, Effective, PolicySnapshot, Target, resolve
from governance.models import AIFeature, ConsentEvent, DataCategory, Purpose, TermsVersion
from governance.selectors import build_snapshot, catalog_entries, reconsent_index

from .. import periods
from ..models import Report, ReportSchedule

FORMAT_VERSION = 1
WORST_ACCOUNTS = 20
NO_GROUP = 0
# An account id no real account has: the engine resolves it with only the groups we give it.
PROBE = -1
FREELY_GIVEN, NOT_FREELY_GIVEN, MISSING = "freely_given", "not_freely_given", "missing"
BASIS_STATES = (FREELY_GIVEN, NOT_FREELY_GIVEN, STALE, REVOKED, MISSING)


def reports_of(organization: Organization):
    return Report.objects.filter(organization=organization)


def schedules_of(organization: Organization):
    return ReportSchedule.objects.filter(organization=organization).select_related("periodic_task__crontab")


def report_file(report: Report, format: str):
    return report.files.filter(format=format).first()


def covering_digest(organization: Organization, instant: datetime) -> AuditDigest | None:
    """The first signed digest whose period ends at or after `instant`: it vouches for every event before."""
    return (AuditDigest.objects.filter(organization=organization, period_end__gte=instant)
            .order_by("period_end", "id").first())


def report_content(organization: Organization, *, start: date, end: date, now: datetime | None = None,
                   progress: Callable[[int], None] = lambda percent: None) -> dict:
    """Everything a report states about `organization` over [start, end), as plain JSON data.

    Switches and consent are taken as they stood at the end of the period (or now, while the
    period is still open); flows, violations, changes and consent activity are those of the period.
    """
    now = now or timezone.now()
    start_at, end_at = periods.midnight(start), periods.midnight(end)
    as_of = min(end_at - timedelta(microseconds=1), now)
    names = catalog_of(organization)
    snapshot = build_snapshot(organization, at=as_of)
    population = governed_accounts(organization, end_at)
    groups = dict(Group.objects.filter(organization=organization, created_at__lt=end_at)
                  .order_by("display_name", "pk").values_list("pk", "display_name"))
    members = members_by_group(snapshot.account_groups, population)
    progress(15)

    switches = switches_at(snapshot, names, groups)
    changes = policy_changes(organization, start_at, end_at, names)
    progress(25)
    consent = consent_coverage(organization, snapshot, names, groups, members, population, as_of)
    consent["activity"] = consent_activity(organization, start_at, end_at)
    progress(45)
    flows = flow_figures(organization, start_at, end_at, names, groups, start, end)
    progress(60)
    record = processing_record(switches, consent, flows, names)
    progress(70)
    audit = audit_evidence(organization, start_at, end_at, now)

    summary = {
        "accounts": len(population), "groups": len(groups), "rules_in_force": len(switches["rules"]),
        "policy_changes": len(changes),
        "features_on": sum(1 for row in switches["features"] if row["effect"] == "allow"),
        **{f"consents_{state}": sum(row[state] for row in consent["by_use"]) for state in BASIS_STATES
           if state != MISSING},
        "flows": flows["flows"], "violations": flows["violations"],
        "violating_accounts": flows["violating_accounts"],
        "digest_signed": bool(audit["digest"] and audit["digest"]["signature_valid"]),
        "chain_valid": audit["chain"]["valid"],
    }
    return {
        "format_version": FORMAT_VERSION,
        "organization": {"slug": organization.slug, "name": organization.name},
        "period": {"start": start.isoformat(), "end": end.isoformat(), "last_day": (end - timedelta(days=1)).isoformat(),
                   "label": periods.label(start, end), "as_of": iso(as_of), "closed": end_at <= now},
        "summary": summary,
        "catalog": names,
        "switches": switches,
        "policy_changes": changes,
        "terms": terms_versions(organization, start_at, end_at),
        "consent": consent,
        "violations": flows,
        "processing_record": record,
        "audit": audit,
    }


def generation_facts(now: datetime) -> dict:
    """What differs each time the same period is generated."""
    return {"at": iso(now)}


# --- Who and what ---------------------------------------------------------------------------------------

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


# --- Switches at the end of the period -------------------------------------------------------------------

def _effective(value: Effective) -> dict:
    applied = value.applied
    return {
        "effect": value.effect, "default": value.default, "decided_by": value.decided_by,
        "locked": value.locked_by is not None, "locked_by": value.locked_by.id if value.locked_by else None,
        "rules": [rule.id for rule in applied], "reason": applied[-1].reason if applied else "",
        "enabled_by": list(value.enabled_by),
        "denied_pairs": [f"{pair.target.data_category}/{pair.target.purpose}" for pair in value.denied_pairs],
    }


def switches_at(snapshot: PolicySnapshot, names: dict, groups: dict[int, str]) -> dict:
    """The effective value of every feature and data-sharing switch for the organization as a whole
    (an account in no group, without rules of its own) and, where it differs or a group rule
    applies, for each group; and the rules in force."""
    catalog = snapshot.catalog
    targets = catalog.targets()
    org_view, org_memo = replace(snapshot, account_groups={}), {}
    org_values = {target: resolve(org_view, PROBE, target, org_memo) for target in targets}
    account_rules = Counter(target for rules in snapshot.account_rules.values() for target in rules)
    allowing, denying = Counter(), Counter()
    by_group = []
    for group_id, group_name in groups.items():
        view = replace(snapshot, account_groups={PROBE: (group_id,)})
        memo: dict = {}
        differences = []
        for target in targets:
            value = resolve(view, PROBE, target, memo)
            (allowing if value.allowed else denying)[target] += 1
            own_rule = any(rule.scope == "group" for rule in value.applied)
            if value.effect != org_values[target].effect or own_rule:
                differences.append({**target.as_dict(), "target": target_label(target, names),
                                    "organization_effect": org_values[target].effect, **_effective(value)})
        by_group.append({"group": group_id, "name": group_name, "differences": differences})

    def row(target: Target) -> dict:
        return {**target.as_dict(), "target": target_label(target, names), **_effective(org_values[target]),
                "groups_allowing": allowing[target], "groups_denying": denying[target],
                "account_rules": account_rules[target]}

    features = [{**row(t), "name": names["features"].get(t.feature, {}).get("name", t.feature)}
                for t in targets if t.is_feature]
    data_sharing = [{**row(t), "kind": catalog.category_kinds.get(t.data_category),
                     "needs_consent": catalog.needs_consent(t.data_category, t.purpose)}
                    for t in targets if not t.is_feature]
    return {"features": features, "data_sharing": data_sharing, "groups": by_group,
            "rules": rules_in_force(snapshot, names, groups)}


def rules_in_force(snapshot: PolicySnapshot, names: dict, groups: dict[int, str]) -> list[dict]:
    entries = [(target, rule) for target, rule in snapshot.org_rules.items()]
    entries += [(target, rule) for rules in snapshot.group_rules.values() for target, rule in rules.items()]
    entries += [(target, rule) for rules in snapshot.account_rules.values() for target, rule in rules.items()]
    account_ids = {rule.account_id for _, rule in entries if rule.account_id}
    user_names = dict(Account.objects.filter(pk__in=account_ids).values_list("pk", "user_name")) if account_ids else {}
    order = {"organization": 0, "group": 1, "account": 2}
    entries.sort(key=lambda entry: (order[entry[1].scope], entry[1].id))
    return [{"id": rule.id, "scope": rule.scope, "group": rule.group_id,
             "group_name": groups.get(rule.group_id, "") if rule.group_id else "",
             "account": user_names.get(rule.account_id, "") if rule.account_id else "",
             **target.as_dict(), "target": target_label(target, names), "effect": rule.effect,
             "locked": rule.locked, "reason": rule.reason} for target, rule in entries]


def policy_changes(organization: Organization, start_at: datetime, end_at: datetime, names: dict) -> list[dict]:
    """Every rule created, changed or deleted in the period, from the audit trail: who, when, why."""
    rows = (events_of(organization)
            .filter(kind=EventKind.POLICY_CHANGED, occurred_at__gte=start_at, occurred_at__lt=end_at)
            .order_by("seq").values_list("seq", "body"))
    changes = []
    for seq, body in rows.iterator(chunk_size=2000):
        event = orjson.loads(body)
        payload = event["payload"]
        before, after = payload.get("before") or {}, payload.get("after") or {}
        state = after or before
        target = Target(state.get("feature"), state.get("data_category"), state.get("purpose"))
        changes.append({
            "seq": seq, "occurred_at": event["occurred_at"], "actor": event["actor"].get("name", ""),
            "actor_kind": event["actor"].get("kind", ""), "action": payload.get("action", ""),
            "rule": payload.get("rule"), "scope": state.get("scope", ""), "group_name": state.get("group_name") or "",
            "account": state.get("account") or "", "target": target_label(target, names),
            "effect_before": before.get("effect"), "effect_after": after.get("effect"),
            "locked_before": before.get("locked"), "locked_after": after.get("locked"),
            "expires_at": after.get("expires_at"), "reason": payload.get("reason", ""),
        })
    return changes


def terms_versions(organization: Organization, start_at: datetime, end_at: datetime) -> list[dict]:
    versions = (TermsVersion.objects.filter(organization=organization, effective_at__lt=end_at)
                .prefetch_related("covers__data_category", "covers__purpose").order_by("effective_at", "pk"))
    return [{"version": terms.version, "effective_at": iso(terms.effective_at),
             "requires_reconsent": terms.requires_reconsent, "in_period": terms.effective_at >= start_at,
             "covers": sorted(f"{c.data_category.key}/{c.purpose.key}" for c in terms.covers.all())}
            for terms in versions]


# --- Consent -------------------------------------------------------------------------------------------

def basis_state(index: ConsentIndex, account_id: int, pair: tuple[str, str], at: datetime) -> str:
    """Freely given, not freely given, stale (after a terms change), revoked or missing."""
    basis = index.basis(account_id, pair, at)
    if basis.state == VALID:
        return FREELY_GIVEN if basis.record.freely_given else NOT_FREELY_GIVEN
    return basis.state


def consent_coverage(organization: Organization, snapshot: PolicySnapshot, names: dict, groups: dict[int, str],
                     members: dict[int, list[int]], population: list[int], as_of: datetime) -> dict:
    """For each use that needs each person's own consent, the basis of every governed account as of
    `as_of`, per use, per group and per group x use. A consent given by an admin on someone's behalf
    or through a join-or-leave prompt is a basis but counted apart; so is a consent made stale by a
    terms version requiring re-consent (whoever gave it)."""
    catalog = snapshot.catalog
    uses = [(c, p) for c in sorted(catalog.category_kinds) for p in catalog.purpose_keys if catalog.needs_consent(c, p)]
    index = consent_index_as_of(organization, catalog, as_of)
    governed = set(population)
    per_use = {use: Counter() for use in uses}
    per_group_use: dict[tuple[int, tuple], Counter] = defaultdict(Counter)
    for account_id, timelines in index.timelines.items():
        if account_id not in governed:
            continue
        account_groups = snapshot.account_groups.get(account_id, ()) or (NO_GROUP,)
        for use in uses:
            if use not in timelines:
                continue
            state = basis_state(index, account_id, use, as_of)
            if state == MISSING:
                continue
            per_use[use][state] += 1
            for group_id in account_groups:
                per_group_use[(group_id, use)][state] += 1

    def counts(tally: Counter, total: int) -> dict:
        known = {state: tally[state] for state in BASIS_STATES if state != MISSING}
        valid = known[FREELY_GIVEN] + known[NOT_FREELY_GIVEN]
        return {**known, MISSING: total - sum(known.values()),
                "coverage": round(valid / total, 4) if total else None}

    group_rows = [(group_id, name) for group_id, name in groups.items()]
    if members.get(NO_GROUP):
        group_rows.append((NO_GROUP, "(no group)"))
    by_use = [{"data_category": c, "purpose": p, "use": pair_label(c, p, names), "accounts": len(population),
               **counts(per_use[(c, p)], len(population))} for c, p in uses]
    by_group, by_group_use = [], []
    for group_id, name in group_rows:
        size = len(members.get(group_id, ()))
        total = Counter()
        for c, p in uses:
            tally = per_group_use.get((group_id, (c, p)), Counter())
            total.update(tally)
            by_group_use.append({"group": group_id or None, "group_name": name, "data_category": c, "purpose": p,
                                 "accounts": size, **counts(tally, size)})
        by_group.append({"group": group_id or None, "name": name, "members": size, "uses": len(uses),
                         **counts(total, size * len(uses))})
    return {"as_of": iso(as_of), "uses": [f"{c}/{p}" for c, p in uses], "by_use": by_use, "by_group": by_group,
            "by_group_use": by_group_use}


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt_timezone.utc)  # SQLite keeps UTC without an offset


def consent_index_as_of(organization: Organization, catalog: Catalog, as_of: datetime) -> ConsentIndex:
    """The organization's consent timelines as of `as_of`, with its re-consent terms.

    What `governance.selectors.load_consents` builds, from the events that occurred by `as_of`
    only, and with their instants read as text: the timestamptz loader Django registers with
    psycopg takes about 9 µs a value, most of the time of loading 300,000 events otherwise.
    """
    index = reconsent_index(organization)
    rows = (ConsentEvent.objects.filter(organization=organization, occurred_at__lte=as_of)
            .annotate(at=Cast("occurred_at", CharField()), terms_at=Cast("terms_version__effective_at", CharField()))
            .order_by("occurred_at", "id")
            .values_list("id", "account_id", "feature__key", "data_category__key", "purpose__key", "action",
                         "mechanism", "at", "terms_version__version", "terms_at"))
    shared: dict = {}
    for (event_id, account_id, feature, category, purpose, action, mechanism, at, terms,
         terms_at) in rows.iterator(chunk_size=10_000):
        pairs = catalog.feature_pairs.get(feature, ()) if feature else ((category, purpose),)
        terms_effective_at = shared.get(("terms", terms))
        if terms_effective_at is None and terms_at is not None:
            terms_effective_at = shared[("terms", terms)] = _instant(terms_at)
        index.add(account_id, pairs, ConsentRecord(
            event_id, shared.setdefault(action, action), shared.setdefault(mechanism, mechanism), _instant(at),
            shared.setdefault(terms, terms), terms_effective_at, shared.setdefault(feature, feature)))
    return index


def consent_activity(organization: Organization, start_at: datetime, end_at: datetime) -> dict:
    """Grants and revocations that occurred in the period: by mechanism, and per day."""
    events = ConsentEvent.objects.filter(organization=organization, occurred_at__gte=start_at, occurred_at__lt=end_at)
    by_mechanism = defaultdict(lambda: {"grant": 0, "revoke": 0})
    for row in events.values("mechanism", "action").annotate(n=Count("id")).order_by("mechanism", "action"):
        by_mechanism[row["mechanism"]][row["action"]] = row["n"]
    daily = defaultdict(lambda: {"grant": 0, "revoke": 0})
    for row in (events.annotate(day=TruncDate("occurred_at")).values("day", "action").annotate(n=Count("id"))
                .order_by("day", "action")):
        daily[row["day"].isoformat()][row["action"]] = row["n"]
    not_free = sum(by_mechanism[m]["grant"] for m in ("admin_on_behalf", "join_or_leave_prompt"))
    return {"grants": sum(v["grant"] for v in by_mechanism.values()),
            "revocations": sum(v["revoke"] for v in by_mechanism.values()),
            "grants_not_freely_given": not_free,
            "by_mechanism": [{"mechanism": m, **v} for m, v in sorted(by_mechanism.items())],
            "daily": [{"day": d, **v} for d, v in sorted(daily.items())]}


# --- Flows and violations ---------------------------------------------------------------------------------

def _tally() -> dict:
    return {"flows": 0, "volume": 0, "violations": 0, "violation_volume": 0}


def _add(tally: dict, verdict: str, flows: int, volume: int) -> None:
    tally["flows"] += flows
    tally["volume"] += volume
    if verdict == Verdict.VIOLATION:
        tally["violations"] += flows
        tally["violation_volume"] += volume


def flow_figures(organization: Organization, start_at: datetime, end_at: datetime, names: dict,
                 groups: dict[int, str], start: date, end: date) -> dict:
    """The period's flows and violations.

    Totals and the splits by category, purpose and destination count each flow once (one grouped
    scan of the period's flows: they match `/api/v1/flows/`); the split by group comes from the
    exposure rollups (it matches `/api/v1/exposure/`), where a flow carrying the data of accounts in
    several groups counts once in each of them.
    """
    rows = (TelemetryFlow.objects.filter(organization=organization, occurred_at__gte=start_at, occurred_at__lt=end_at)
            .annotate(day=TruncDate("occurred_at"))
            .values("day", "data_category", "purpose", "destination", "verdict")
            .annotate(n=Count("id"), total_volume=Sum("volume"))
            .order_by())
    total = _tally()
    cells, categories, purposes, destinations, daily = (defaultdict(_tally) for _ in range(5))
    for row in rows:
        verdict, n, volume = row["verdict"], row["n"], row["total_volume"] or 0
        for tally in (total, cells[(row["data_category"], row["purpose"], row["destination"])],
                      categories[row["data_category"]], purposes[row["purpose"]],
                      destinations[row["destination"]], daily[row["day"].isoformat()]):
            _add(tally, verdict, n, volume)

    def ranked(tallies: dict, key_name: str, label=None) -> list[dict]:
        ordered = sorted(tallies.items(), key=lambda item: (-item[1]["violations"], -item[1]["flows"], item[0]))
        return [{key_name: key, **({"name": label(key)} if label else {}), **tally} for key, tally in ordered]

    exposed = exposure(organization, since=start, until=end - timedelta(days=1))
    by_group = defaultdict(_tally)
    for cell in exposed["cells"]:
        tally = by_group[(cell["group"] or NO_GROUP, cell["group_name"])]
        for name in ("flows", "volume", "violations", "violation_volume"):
            tally[name] += cell[name]
    days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days)]
    worst, violating = worst_accounts(organization, start_at, end_at, groups)
    return {
        **total, "violating_accounts": violating,
        "by_category": ranked(categories, "data_category",
                              lambda k: names["data_categories"].get(k, {}).get("name", k)),
        "by_purpose": ranked(purposes, "purpose", lambda k: names["purposes"].get(k, {}).get("name", k)),
        "by_destination": ranked(destinations, "destination"),
        "by_group": [{"group": key[0] or None, "name": key[1], **tally} for key, tally in
                     sorted(by_group.items(), key=lambda item: (-item[1]["violations"], -item[1]["flows"], item[0]))],
        "cells": [{"data_category": c, "purpose": p, "destination": d, **tally}
                  for (c, p, d), tally in sorted(cells.items())],
        "daily": [{"day": day, "flows": daily[day]["flows"], "violations": daily[day]["violations"]}
                  for day in days] if len(days) <= 400 else [],
        "worst_accounts": worst,
        "exposure": exposed["cells"],
    }


def worst_accounts(organization: Organization, start_at: datetime, end_at: datetime,
                   groups: dict[int, str]) -> tuple[list[dict], int]:
    """The accounts that blocked the most flows in the period, and how many accounts blocked any."""
    links = FlowAccount.objects.filter(blocking=True, flow__organization=organization,
                                       flow__verdict=Verdict.VIOLATION, flow__occurred_at__gte=start_at,
                                       flow__occurred_at__lt=end_at)
    top = list(links.values("account_id").annotate(violations=Count("flow_id"), volume=Sum("flow__volume"))
               .order_by("-violations", "account_id")[:WORST_ACCOUNTS])
    violating = links.values("account_id").distinct().count() if top else 0
    ids = [row["account_id"] for row in top]
    accounts = {a.pk: a for a in Account.objects.filter(pk__in=ids).prefetch_related("groups")}
    return [{"account": accounts[row["account_id"]].user_name,
             "display_name": accounts[row["account_id"]].display_name,
             "groups": sorted(g.display_name for g in accounts[row["account_id"]].groups.all()),
             "violations": row["violations"], "volume": row["volume"] or 0} for row in top], violating


# --- Record of processing --------------------------------------------------------------------------------

def _basis(switch: dict, coverage: dict | None) -> tuple[str, str]:
    """The basis of a use, in a word and in a sentence."""
    if switch["effect"] != "allow":
        rules = ", ".join(f"#{r}" for r in switch["rules"])
        return "none", f"denied ({'rule ' + rules if rules else 'catalog default'})"
    if switch["enabled_by"]:
        allowed_by = f"AI feature {', '.join(switch['enabled_by'])} switched on"
    elif switch["rules"]:
        allowed_by = f"policy rule #{switch['rules'][-1]} ({switch['decided_by']})"
    else:
        allowed_by = "catalog default"
    if coverage is not None:
        valid = coverage[FREELY_GIVEN] + coverage[NOT_FREELY_GIVEN]
        return "consent", (f"individual consent ({valid} of {coverage['accounts']} accounts, "
                           f"{coverage[NOT_FREELY_GIVEN]} not freely given, {coverage[STALE]} stale); {allowed_by}")
    if switch["rules"]:
        return "policy rule", allowed_by
    return ("feature" if switch["enabled_by"] else "catalog default"), allowed_by


def processing_record(switches: dict, consent: dict, flows: dict, names: dict) -> list[dict]:
    """Data category x purpose x destination with its basis, in the spirit of GDPR Art. 30: every use
    allowed for the organization or a group at the period's end, and every use observed in the
    period (with the destinations its flows went to)."""
    coverage = {(row["data_category"], row["purpose"]): row for row in consent["by_use"]}
    observed = defaultdict(list)
    for cell in flows["cells"]:
        observed[(cell["data_category"], cell["purpose"])].append(cell)
    rows = []
    for switch in switches["data_sharing"]:
        pair = (switch["data_category"], switch["purpose"])
        if switch["effect"] != "allow" and not switch["groups_allowing"] and pair not in observed:
            continue
        basis, detail = _basis(switch, coverage.get(pair) if switch["needs_consent"] else None)
        category = names["data_categories"].get(pair[0], {})
        purpose = names["purposes"].get(pair[1], {})
        common = {
            "data_category": pair[0], "category_name": category.get("name", pair[0]), "kind": switch["kind"],
            "fides_data_category": category.get("fides_key", ""), "purpose": pair[1],
            "purpose_name": purpose.get("name", pair[1]), "fides_data_use": purpose.get("fides_key", ""),
            "organization_effect": switch["effect"], "groups_allowing": switch["groups_allowing"],
            "needs_consent": switch["needs_consent"], "basis": basis, "basis_detail": detail,
        }
        for cell in observed.get(pair) or [None]:
            rows.append({**common, "destination": cell["destination"] if cell else None,
                         "flows": cell["flows"] if cell else 0, "violations": cell["violations"] if cell else 0,
                         "volume": cell["volume"] if cell else 0})
    return rows


# --- Audit evidence ----------------------------------------------------------------------------------------

def audit_evidence(organization: Organization, start_at: datetime, end_at: datetime, now: datetime) -> dict:
    """The audit events recorded in the period by kind, the signed digest covering the period's end, and
    the chain between the digests around the period, verified."""
    kinds = (events_of(organization).filter(occurred_at__gte=start_at, occurred_at__lt=end_at)
             .values("kind").annotate(n=Count("id")).order_by("kind"))
    digest = covering_digest(organization, end_at) if end_at <= now else None
    chain = verify_period_chain(organization, start_at, digest)
    described = None
    if digest is not None:
        pem = SigningKey.objects.filter(fingerprint=digest.key_fingerprint).values_list("public_key_pem",
                                                                                        flat=True).first()
        described = {
            "period_start": iso(digest.period_start) if digest.period_start else None,
            "period_end": iso(digest.period_end), "first_seq": digest.first_seq, "last_seq": digest.last_seq,
            "event_count": digest.event_count, "head_hash": digest.head_hash, "algorithm": digest.algorithm,
            "key_fingerprint": digest.key_fingerprint, "signature": digest.signature, "body": digest.body,
            "signature_valid": bool(pem) and verify_signature(pem, digest.body, digest.signature),
        }
    return {"events_in_period": {row["kind"]: row["n"] for row in kinds}, "digest": described, "chain": chain}


def verify_period_chain(organization: Organization, start_at: datetime, covering: AuditDigest | None) -> dict:
    """The chain from the last digest signed before the period (or the first event) to the digest
    covering its end (or the head, while none does), recomputed link by link.

    Every digest's signature and link to the previous one are checked first (they are few); the
    segment must then start from the head hash the earlier digest signed and end on the one the
    covering digest signed. The whole chain, from its first event, is what `verify_audit_chain`
    and `/api/v1/audit-events/verify/` check; a report checks the part that vouches for its period,
    so its cost follows the period and not the organization's whole history.
    """
    digests = AuditDigest.objects.filter(organization=organization).order_by("period_end", "id")
    if covering is not None:  # later digests are not the period's business: the result stays the same
        digests = digests.filter(period_end__lte=covering.period_end)
    problem, anchors = verify_digests(digests.values_list("body", "signature"), public_keys())
    before = digests.filter(period_end__lte=start_at).values_list("last_seq", flat=True).last()
    first_seq = (before or 0) + 1
    if covering is not None:
        last_seq = covering.last_seq
    else:
        last_seq = ChainHead.objects.filter(organization=organization).values_list("seq", flat=True).first() or 0
    result = {"valid": not problem, "problem": problem, "first_invalid_seq": None, "first_seq": first_seq,
              "last_seq": last_seq, "events_checked": 0, "digests_checked": digests.count(),
              "from": "the signed digest before the period" if before is not None else "the first event",
              "to": "the signed digest covering the period's end" if covering is not None else "the chain's head"}
    if problem:
        return result

    rows = event_rows(organization, last_seq, first_seq)
    try:
        checked = verify_links(rows, organization_id=organization.pk, anchors=anchors, first_seq=first_seq,
                               prev_hash=anchors.get(before, GENESIS_HASH) if before else GENESIS_HASH)
    finally:
        rows.close()  # a walk that stopped early ends its query here
    if checked.valid and checked.head_seq != last_seq:
        checked.fail(checked.head_seq + 1, f"the events up to seq {last_seq} are missing")
    result.update(valid=checked.valid, first_invalid_seq=checked.first_invalid_seq, problem=checked.problem,
                  events_checked=checked.events_checked)
    return result


def reports_needing_work(older_than: timedelta, limit: int = 100) -> list[tuple[int, int]]:
    """(id, attempts) of reports queued or running whose row has not moved for `older_than`: their task was lost."""
    cutoff = timezone.now() - older_than
    return list(Report.objects.filter(status__in=[Report.Status.QUEUED, Report.Status.RUNNING],
                                      updated_at__lte=cutoff)
                .order_by("updated_at").values_list("pk", "attempts")[:limit])


def reports_needing_delivery(older_than: timedelta, max_attempts: int, limit: int = 100) -> list[int]:
    """Scheduled reports done for `older_than` and not yet delivered (the mail server was away)."""
    cutoff = timezone.now() - older_than
    return list(Report.objects.filter(status=Report.Status.DONE, schedule__isnull=False, delivered_at__isnull=True,
                                      finished_at__lte=cutoff, delivery_attempts__lt=max_attempts)
                .order_by("finished_at").values_list("pk", flat=True)[:limit])
