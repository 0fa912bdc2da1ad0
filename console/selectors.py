"""Reads behind the console's pages that put several apps' reads together.

They read each app's data through that app's selectors; a page that needs one app's reads only
(an account list, a flow list) calls that app's selectors itself. Each page calls a handful of
these; each does a fixed number of queries, whatever the number of accounts: per-account work
(effective values, consent bases) happens in Python over the organization's compiled policy
(`governance.selectors.compiled_policy`), which the decision API keeps warm in every process
anyway. The overview, which counts over every account and 90 days of exposure, keeps its counts
per process: `console.overview`.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

from django.utils import timezone

from accounts.selectors import active_account_ids, group_names
from audit import proofs
from audit.models import AuditEvent
from audit.selectors import (chain_head, digest_count, digest_signature_valid, events_of, latest_digest, outbox_pending,
                             verify_chain)
from governance.consent import VALID, ConsentRecord
from governance.engine import Target, catalog_default
from governance.memberships import members_by_group
from governance.selectors import catalog_names, compiled_policy, consent_events, live_rules, terms_versions_of

from .periods import instants

# Above this many events the audit page verifies the chain only when asked to.
AUTO_VERIFY_LIMIT = 50_000
PAGE_SIZE = 50


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


# --- Terms and consent -------------------------------------------------------------------------------------

def terms_overview(organization, *, version: str | None = None) -> dict:
    """Terms versions, and for a re-consent version, per group: who renewed, revoked, or is still stale."""
    now = timezone.now()
    terms = terms_versions_of(organization, consent_counts=True)
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


# --- Audit trail -------------------------------------------------------------------------------------------

def audit_events(organization, *, kind: str = "", account: str = "", since: date | None = None,
                 until: date | None = None, before_seq: int | None = None) -> list[AuditEvent]:
    events = events_of(organization).select_related("subject_account")
    if kind:
        events = events.filter(kind=kind)
    if account:
        events = events.filter(subject_account__user_name=account)
    since_at, before = instants(since, until)
    if since_at:
        events = events.filter(occurred_at__gte=since_at)
    if before:
        events = events.filter(occurred_at__lt=before)
    if before_seq:
        events = events.filter(seq__lt=before_seq)
    return list(events.order_by("-seq")[:PAGE_SIZE + 1])


def chain_status(organization, *, verify: bool) -> dict:
    """The chain head, pending outbox rows, the latest signed digest (its signature checked), and a
    full verification when asked for or when the chain is small enough to check on every view."""
    head = chain_head(organization)
    pending = outbox_pending(organization)
    digest = latest_digest(organization)
    digest_valid = None if digest is None else digest_signature_valid(digest)
    verification = None
    automatic = head[0] <= AUTO_VERIFY_LIMIT
    if verify or automatic:
        verification = verify_chain(organization)
    tree_head, consistent = proofs.last_two_heads_consistent(organization)
    return {"head_seq": head[0], "head_hash": head[1], "pending": pending, "digest": digest,
            "digest_valid": digest_valid, "verification": verification, "automatic": automatic,
            "digests": digest_count(organization), "tree_head": tree_head, "consistent": consistent}


def covered_size(organization) -> int:
    """How many leaves the latest signed tree head covers: a leaf below it has a proof to download."""
    head = proofs.tree_heads(organization).last()
    return head.tree_size if head else 0
