"""The switches at the period's end (the organization's, each group's where it differs, the rules in
force), the policy changes of the period and the terms versions."""
from collections import Counter
from dataclasses import replace
from datetime import datetime

import orjson

from accounts.models import Organization
from accounts.selectors import user_names_of
from audit.chain import iso
from audit.models import EventKind
from audit.selectors import event_bodies
from governance.engine import Effective, PolicySnapshot, Target, resolve
from governance.labels import CatalogLabels
from governance.selectors import terms_versions_of

# An account id no real account has: the engine resolves it with only the groups we give it.
PROBE = -1


def _effective(value: Effective) -> dict:
    applied = value.applied
    return {
        "effect": value.effect, "default": value.default, "decided_by": value.decided_by,
        "locked": value.locked_by is not None, "locked_by": value.locked_by.id if value.locked_by else None,
        "rules": [rule.id for rule in applied], "reason": applied[-1].reason if applied else "",
        "enabled_by": list(value.enabled_by),
        "denied_pairs": [f"{pair.target.data_category}/{pair.target.purpose}" for pair in value.denied_pairs],
    }


def switches_at(snapshot: PolicySnapshot, labels: CatalogLabels, groups: dict[int, str]) -> dict:
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
                differences.append({**target.as_dict(), "target": labels.target(target),
                                    "organization_effect": org_values[target].effect, **_effective(value)})
        by_group.append({"group": group_id, "name": group_name, "differences": differences})

    def row(target: Target) -> dict:
        return {**target.as_dict(), "target": labels.target(target), **_effective(org_values[target]),
                "groups_allowing": allowing[target], "groups_denying": denying[target],
                "account_rules": account_rules[target]}

    features = [{**row(t), "name": labels.feature(t.feature)} for t in targets if t.is_feature]
    data_sharing = [{**row(t), "kind": catalog.category_kinds.get(t.data_category),
                     "needs_consent": catalog.needs_consent(t.data_category, t.purpose)}
                    for t in targets if not t.is_feature]
    return {"features": features, "data_sharing": data_sharing, "groups": by_group,
            "rules": rules_in_force(snapshot, labels, groups)}


def rules_in_force(snapshot: PolicySnapshot, labels: CatalogLabels, groups: dict[int, str]) -> list[dict]:
    entries = [(target, rule) for target, rule in snapshot.org_rules.items()]
    entries += [(target, rule) for rules in snapshot.group_rules.values() for target, rule in rules.items()]
    entries += [(target, rule) for rules in snapshot.account_rules.values() for target, rule in rules.items()]
    account_ids = {rule.account_id for _, rule in entries if rule.account_id}
    user_names = user_names_of(account_ids)
    order = {"organization": 0, "group": 1, "account": 2}
    entries.sort(key=lambda entry: (order[entry[1].scope], entry[1].id))
    return [{"id": rule.id, "scope": rule.scope, "group": rule.group_id,
             "group_name": groups.get(rule.group_id, "") if rule.group_id else "",
             "account": user_names.get(rule.account_id, "") if rule.account_id else "",
             **target.as_dict(), "target": labels.target(target), "effect": rule.effect,
             "locked": rule.locked, "reason": rule.reason} for target, rule in entries]


def policy_changes(organization: Organization, start_at: datetime, end_at: datetime,
                   labels: CatalogLabels) -> list[dict]:
    """Every rule created, changed or deleted in the period, from the audit trail: who, when, why."""
    changes = []
    for seq, body in event_bodies(organization, kind=EventKind.POLICY_CHANGED, since=start_at, until=end_at):
        event = orjson.loads(body)
        payload = event["payload"]
        before, after = payload.get("before") or {}, payload.get("after") or {}
        state = after or before
        target = Target(state.get("feature"), state.get("data_category"), state.get("purpose"))
        changes.append({
            "seq": seq, "occurred_at": event["occurred_at"], "actor": event["actor"].get("name", ""),
            "actor_kind": event["actor"].get("kind", ""), "action": payload.get("action", ""),
            "rule": payload.get("rule"), "scope": state.get("scope", ""), "group_name": state.get("group_name") or "",
            "account": state.get("account") or "", "target": labels.target(target),
            "effect_before": before.get("effect"), "effect_after": after.get("effect"),
            "locked_before": before.get("locked"), "locked_after": after.get("locked"),
            "expires_at": after.get("expires_at"), "reason": payload.get("reason", ""),
        })
    return changes


def terms_versions(organization: Organization, start_at: datetime, end_at: datetime) -> list[dict]:
    return [{"version": terms.version, "effective_at": iso(terms.effective_at),
             "requires_reconsent": terms.requires_reconsent, "in_period": terms.effective_at >= start_at,
             "covers": sorted(f"{c.data_category.key}/{c.purpose.key}" for c in terms.covers.all())}
            for terms in terms_versions_of(organization, effective_before=end_at)]
