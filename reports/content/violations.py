"""The period's flows and violations: totals, splits, per day, per group, and the worst accounts."""
from collections import defaultdict
from datetime import date, datetime, timedelta

from accounts.models import Organization
from accounts.selectors import accounts_with_groups
from flows.models import Verdict
from flows.selectors import exposure, flow_counts, top_blocking_accounts
from governance.labels import CatalogLabels
from governance.memberships import NO_GROUP

WORST_ACCOUNTS = 20


def _tally() -> dict:
    return {"flows": 0, "volume": 0, "violations": 0, "violation_volume": 0}


def _add(tally: dict, verdict: str, flows: int, volume: int) -> None:
    tally["flows"] += flows
    tally["volume"] += volume
    if verdict == Verdict.VIOLATION:
        tally["violations"] += flows
        tally["violation_volume"] += volume


def flow_figures(organization: Organization, start_at: datetime, end_at: datetime, labels: CatalogLabels,
                 groups: dict[int, str], start: date, end: date) -> dict:
    """The period's flows and violations.

    Totals and the splits by category, purpose and destination count each flow once (one grouped
    scan of the period's flows: they match `/api/v1/flows/`); the split by group comes from the
    exposure rollups (it matches `/api/v1/exposure/`), where a flow carrying the data of accounts in
    several groups counts once in each of them.
    """
    total = _tally()
    cells, categories, purposes, destinations, daily = (defaultdict(_tally) for _ in range(5))
    for row in flow_counts(organization, since=start_at, until=end_at):
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
        "by_category": ranked(categories, "data_category", labels.data_category),
        "by_purpose": ranked(purposes, "purpose", labels.purpose),
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
    top, violating = top_blocking_accounts(organization, since=start_at, until=end_at, limit=WORST_ACCOUNTS)
    accounts = accounts_with_groups([row["account_id"] for row in top])
    return [{"account": accounts[row["account_id"]].user_name,
             "display_name": accounts[row["account_id"]].display_name,
             "groups": sorted(g.display_name for g in accounts[row["account_id"]].groups.all()),
             "violations": row["violations"], "volume": row["volume"] or 0} for row in top], violating
