"""Reads behind a compliance report: what it states about one organization over one period.

`report_content` returns plain JSON data (dicts, lists, strings, numbers; instants written as the
audit chain writes them), so one content renders to JSON, CSV, HTML and PDF alike, and a report of
a closed period comes out the same every time it is generated. Its figures come from the selectors
the API answers with: the exposure rollups, the flows, the policy engine and the consent timelines.
Each section of a report has a module of its own; `report_content` puts them together.
"""
from collections.abc import Callable
from datetime import date, datetime, timedelta

from django.utils import timezone

from accounts.models import Organization
from accounts.selectors import accounts_governed_at, group_names
from audit.chain import iso
from governance.consent import BASIS_KEYS, MISSING
from governance.memberships import members_by_group
from governance.selectors import build_snapshot, catalog_by_key

from .. import periods
from .consent import consent_activity, consent_coverage
from .evidence import audit_evidence
from .inventory import labels_of
from .processing import processing_record
from .switches import policy_changes, switches_at, terms_versions
from .violations import flow_figures

FORMAT_VERSION = 1


def report_content(organization: Organization, *, start: date, end: date, now: datetime | None = None,
                   progress: Callable[[int], None] = lambda percent: None) -> dict:
    """Everything a report states about `organization` over [start, end), as plain JSON data.

    Switches and consent are taken as they stood at the end of the period (or now, while the
    period is still open); flows, violations, changes and consent activity are those of the period.
    """
    now = now or timezone.now()
    start_at, end_at = periods.midnight(start), periods.midnight(end)
    as_of = min(end_at - timedelta(microseconds=1), now)
    names = catalog_by_key(organization)
    labels = labels_of(names)
    snapshot = build_snapshot(organization, at=as_of)
    population = accounts_governed_at(organization, end_at)
    groups = group_names(organization, created_before=end_at)
    members = members_by_group(snapshot.account_groups, population)
    progress(15)

    switches = switches_at(snapshot, labels, groups)
    changes = policy_changes(organization, start_at, end_at, labels)
    progress(25)
    consent = consent_coverage(organization, snapshot, labels, groups, members, population, as_of)
    consent["activity"] = consent_activity(organization, start_at, end_at)
    progress(45)
    flows = flow_figures(organization, start_at, end_at, labels, groups, start, end)
    progress(60)
    record = processing_record(switches, consent, flows, names)
    progress(70)
    audit = audit_evidence(organization, start_at, end_at, now)

    summary = {
        "accounts": len(population), "groups": len(groups), "rules_in_force": len(switches["rules"]),
        "policy_changes": len(changes),
        "features_on": sum(1 for row in switches["features"] if row["effect"] == "allow"),
        **{f"consents_{state}": sum(row[state] for row in consent["by_use"]) for state in BASIS_KEYS
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
