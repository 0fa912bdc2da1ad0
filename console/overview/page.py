"""What the overview page shows, read from what the process keeps of the organization (`state`)."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from django.utils import timezone

from accounts.selectors import group_names
from governance.engine import Target
from governance.selectors import CatalogNames, catalog_names, compiled_policy, rule_count, terms_by_date

from ..periods import period, start_of
from .state import overview_state
from .tallies import Tallies


def overview_of(organization, *, days: int, uses: str = "training") -> dict:
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
    training = catalog.training_purposes()
    groups = group_names(organization)
    terms = terms_by_date(organization)
    latest_reconsent = next((t for t in reversed(terms) if t["requires_reconsent"] and t["effective_at"] <= now),
                            None)
    rules = rule_count(organization)
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


def activity(since: date, until: date, violations: dict, consents: Counter, terms: list[dict]) -> dict:
    """Consent grants and revocations, and flow violations, per day of the period."""
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    start = start_of(since)
    return {"days": days, "grants": [consents[d, "grant"] for d in days],
            "revocations": [consents[d, "revoke"] for d in days],
            "violations": [violations.get(d, 0) for d in days],
            "terms": [t for t in terms if t["effective_at"] >= start]}


def violation_count(organization, since: date, until: date) -> int:
    """Flows judged violations in [since, until] (until today at the latest), from the overview's counts."""
    state = overview_state(organization)
    with state.lock:
        state.refresh_flows(organization, since, timezone.now().date())
        return sum(state.flows.violations_between(since, until).values())
