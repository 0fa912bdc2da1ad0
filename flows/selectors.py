"""Reads of judged flows: listings, exposure from the rollups, and counts over a period."""
from datetime import date, datetime, timedelta

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Account, Group

from .models import ExposureRollup, ExposureSeen, FlowAccount, TelemetryFlow, Verdict

STREAM_CHUNK = 10_000


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


def violations_per_day(organization, since: datetime) -> dict[date, int]:
    """Flows judged violations per day from `since`: counted from the flows themselves (a rollup counts
    a flow once per group it touched), which the (organization, verdict, occurred_at) index serves."""
    rows = TelemetryFlow.objects.filter(organization=organization, verdict=Verdict.VIOLATION,
                                        occurred_at__gte=since)
    rows = rows.annotate(day=TruncDate("occurred_at")).values("day").annotate(n=Count("id"))
    return {row["day"]: row["n"] for row in rows}


def flow_days_in_leaves(organization, *, from_leaf: int, to_leaf: int) -> dict[date, int]:
    """The days of the flows that are leaves [from_leaf, to_leaf) of the organization's log, each with how
    many of them were violations (a worker writes a batch's flows, rollups and leaves together)."""
    rows = (TelemetryFlow.objects.filter(organization=organization, leaf_index__gte=from_leaf, leaf_index__lt=to_leaf)
            .annotate(day=TruncDate("occurred_at")).values_list("day")
            .annotate(n=Count("id", filter=Q(verdict=Verdict.VIOLATION))))
    return dict(rows)


def rollup_rows(organization, *, days: list[date] | None = None, since: date | None = None):
    """The organization's exposure rollup rows of `days`, or of every day from `since`, read in chunks:
    (day, group_key, data_category, purpose, destination, verdict, flows, volume)."""
    which = {"day__in": days} if days is not None else {"day__gte": since}
    return (ExposureRollup.objects.filter(organization=organization, **which)
            .values_list("day", "group_key", "data_category", "purpose", "destination", "verdict", "flows", "volume")
            .iterator(chunk_size=STREAM_CHUNK))


def last_exposure_record_id(organization) -> int:
    """The id of the organization's latest exposure record, 0 before the first: a worker inserts an
    organization's records under its chain head, so later ids are records committed later."""
    return (ExposureSeen.objects.filter(organization=organization).order_by("-pk")
            .values_list("pk", flat=True).first() or 0)


def latest_exposure_days(organization, *, content: frozenset, training: frozenset, ai: frozenset, first: date,
                         last: date):
    """Per account with exposure records of an `ai` purpose from `first` to `last`: its latest day of a
    `training` purpose on `content` categories, on other categories, and of any `ai` purpose, read in
    chunks: (account_id, content, generated, ai), None where there is no such day."""
    trained = Q(purpose__in=training)
    return (ExposureSeen.objects.filter(organization=organization, purpose__in=ai)
            .filter(day__gte=first, day__lte=last).values("account_id")
            .annotate(content=Max("day", filter=trained & Q(data_category__in=content)),
                      generated=Max("day", filter=trained & ~Q(data_category__in=content)), ai=Max("day"))
            .values_list("account_id", "content", "generated", "ai").iterator(chunk_size=STREAM_CHUNK))


def exposure_records_after_day(organization, *, purposes: frozenset, day: date) -> list[tuple]:
    """(account_id, day, data_category, purpose) of the exposure records of `purposes` dated after `day`."""
    return list(ExposureSeen.objects.filter(organization=organization, purpose__in=purposes).filter(day__gt=day)
                .values_list("account_id", "day", "data_category", "purpose"))


def exposure_records_since(organization, *, purposes: frozenset, after_id: int) -> list[tuple]:
    """(id, account_id, day, data_category, purpose) of the exposure records of `purposes` inserted after
    `after_id`, in id order."""
    return list(ExposureSeen.objects.filter(organization=organization, pk__gt=after_id, purpose__in=purposes)
                .order_by("pk").values_list("pk", "account_id", "day", "data_category", "purpose"))


def flows_of(organization):
    return TelemetryFlow.objects.filter(organization=organization)


def flow_list(organization, *, limit: int, verdict: str = "", data_category: str = "", purpose: str = "",
              destination: str = "", account: Account | None = None, since: datetime | None = None,
              before: datetime | None = None, cursor: tuple[datetime, int] | None = None) -> list[TelemetryFlow]:
    """The organization's flows, newest first, at most `limit`, matching every filter given: `account`
    among their accounts, occurred from `since` and before `before`, after `cursor` (the instant and id
    of the last flow of the page before)."""
    given = {"verdict": verdict, "data_category": data_category, "purpose": purpose, "destination": destination,
             "occurred_at__gte": since, "occurred_at__lt": before}
    flows = TelemetryFlow.objects.filter(organization=organization,
                                         **{lookup: value for lookup, value in given.items() if value})
    if account is not None:
        flows = flows.filter(pk__in=FlowAccount.objects.filter(account=account).values("flow_id"))
    if cursor:
        flows = flows.filter(Q(occurred_at__lt=cursor[0]) | Q(occurred_at=cursor[0], pk__lt=cursor[1]))
    return list(flows.defer("batch").order_by("-occurred_at", "-pk")[:limit])


def account_flows(account: Account, limit: int = 30) -> list[FlowAccount]:
    """The account's latest flows (its links to them, each with its flow)."""
    return list(FlowAccount.objects.filter(account=account).select_related("flow").order_by("-flow_id")[:limit])


def flow_counts(organization, *, since: datetime, until: datetime):
    """The organization's flows that occurred in [since, until) in one grouped scan, each flow counted
    once: per day, data category, purpose, destination and verdict, how many (`n`) and their volume
    (`total_volume`)."""
    return (TelemetryFlow.objects.filter(organization=organization, occurred_at__gte=since, occurred_at__lt=until)
            .annotate(day=TruncDate("occurred_at"))
            .values("day", "data_category", "purpose", "destination", "verdict")
            .annotate(n=Count("id"), total_volume=Sum("volume"))
            .order_by())


def top_blocking_accounts(organization, *, since: datetime, until: datetime, limit: int) -> tuple[list[dict], int]:
    """The accounts that blocked the most violations that occurred in [since, until), most first (at most
    `limit`, each with its `account_id`, `violations` and their `volume`), and how many accounts blocked any."""
    links = FlowAccount.objects.filter(blocking=True, flow__organization=organization,
                                       flow__verdict=Verdict.VIOLATION, flow__occurred_at__gte=since,
                                       flow__occurred_at__lt=until)
    top = list(links.values("account_id").annotate(violations=Count("flow_id"), volume=Sum("flow__volume"))
               .order_by("-violations", "account_id")[:limit])
    return top, links.values("account_id").distinct().count() if top else 0
