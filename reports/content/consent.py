"""Consent at the period's end, per use, per group and per group x use; and the period's consent activity."""
from collections import Counter, defaultdict
from datetime import datetime

from accounts.models import Organization
from audit.chain import iso
from governance.consent import (BASIS_FREELY_GIVEN, BASIS_NOT_FREELY_GIVEN, BASIS_KEYS, MISSING, NOT_FREELY_GIVEN,
                                basis_key)
from governance.engine import PolicySnapshot
from governance.labels import CatalogLabels
from governance.memberships import NO_GROUP
from governance.selectors import consent_actions_by_mechanism, consent_actions_per_day, load_consents


def consent_coverage(organization: Organization, snapshot: PolicySnapshot, labels: CatalogLabels,
                     groups: dict[int, str], members: dict[int, list[int]], population: list[int],
                     as_of: datetime) -> dict:
    """For each use that needs each person's own consent, the basis of every governed account as of
    `as_of`, per use, per group and per group x use. A consent given by an admin on someone's behalf
    or through a join-or-leave prompt is a basis but counted apart; so is a consent made stale by a
    terms version requiring re-consent (whoever gave it)."""
    catalog = snapshot.catalog
    uses = [(c, p) for c in sorted(catalog.category_kinds) for p in catalog.purpose_keys if catalog.needs_consent(c, p)]
    index = load_consents(organization, catalog, as_of=as_of)
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
            state = basis_key(index.basis(account_id, use, as_of))
            if state == MISSING:
                continue
            per_use[use][state] += 1
            for group_id in account_groups:
                per_group_use[(group_id, use)][state] += 1

    def counts(tally: Counter, total: int) -> dict:
        known = {state: tally[state] for state in BASIS_KEYS if state != MISSING}
        valid = known[BASIS_FREELY_GIVEN] + known[BASIS_NOT_FREELY_GIVEN]
        return {**known, MISSING: total - sum(known.values()),
                "coverage": round(valid / total, 4) if total else None}

    group_rows = [(group_id, name) for group_id, name in groups.items()]
    if members.get(NO_GROUP):
        group_rows.append((NO_GROUP, "(no group)"))
    by_use = [{"data_category": c, "purpose": p, "use": labels.pair(c, p), "accounts": len(population),
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


def consent_activity(organization: Organization, start_at: datetime, end_at: datetime) -> dict:
    """Grants and revocations that occurred in the period: by mechanism, and per day."""
    by_mechanism = defaultdict(lambda: {"grant": 0, "revoke": 0})
    for mechanism, action, n in consent_actions_by_mechanism(organization, since=start_at, until=end_at):
        by_mechanism[mechanism][action] = n
    daily = defaultdict(lambda: {"grant": 0, "revoke": 0})
    for day, action, n in consent_actions_per_day(organization, since=start_at, until=end_at):
        daily[day.isoformat()][action] = n
    not_free = sum(by_mechanism[m]["grant"] for m in NOT_FREELY_GIVEN)
    return {"grants": sum(v["grant"] for v in by_mechanism.values()),
            "revocations": sum(v["revoke"] for v in by_mechanism.values()),
            "grants_not_freely_given": not_free,
            "by_mechanism": [{"mechanism": m, **v} for m, v in sorted(by_mechanism.items())],
            "daily": [{"day": d, **v} for d, v in sorted(daily.items())]}
