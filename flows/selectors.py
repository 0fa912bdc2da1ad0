"""Reads of judged flows: exposure from the rollups."""
from datetime import date, timedelta

from django.db.models import Max, Q, Sum
from django.utils import timezone

from accounts.models import Group

from .models import ExposureRollup, Verdict


def exposure(organization, *, since: date | None = None, until: date | None = None) -> dict:
    """Exposure over [since, until] from the rollups: per group x category x purpose x destination,
    flows, volume and violations; `account_days` sums each day's distinct accounts, and
    `peak_daily_accounts` is the largest of them (distinct accounts over a range are not additive)."""
    until = until or timezone.now().date()
    since = since or until - timedelta(days=30)
    rows = (ExposureRollup.objects.filter(organization=organization, day__gte=since, day__lte=until)
            .values("group_key", "data_category", "purpose", "destination")
            .annotate(total_flows=Sum("flows"), total_volume=Sum("volume"),
                      violations=Sum("flows", filter=Q(verdict=Verdict.VIOLATION)),
                      violation_volume=Sum("volume", filter=Q(verdict=Verdict.VIOLATION)),
                      account_days=Sum("accounts"), peak_daily_accounts=Max("accounts"))
            .order_by("group_key", "data_category", "purpose", "destination"))
    names = dict(Group.objects.filter(organization=organization).values_list("pk", "display_name"))
    cells = [{"group": row["group_key"] or None, "group_name": names.get(row["group_key"], "(no group)"),
              "data_category": row["data_category"], "purpose": row["purpose"], "destination": row["destination"],
              "flows": row["total_flows"], "volume": row["total_volume"], "violations": row["violations"] or 0,
              "violation_volume": row["violation_volume"] or 0, "account_days": row["account_days"],
              "peak_daily_accounts": row["peak_daily_accounts"]} for row in rows]
    daily = list(ExposureRollup.objects.filter(organization=organization, day__gte=since, day__lte=until)
                 .values("day").annotate(total_flows=Sum("flows"), total_volume=Sum("volume"),
                                         violations=Sum("flows", filter=Q(verdict=Verdict.VIOLATION)))
                 .order_by("day"))
    return {"since": since, "until": until, "cells": cells,
            "daily": [{"day": d["day"], "flows": d["total_flows"], "volume": d["total_volume"],
                       "violations": d["violations"] or 0} for d in daily]}
