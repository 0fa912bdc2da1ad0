"""Report periods: whole UTC days, from `start` (included) to `end` (excluded). Pure functions."""
from datetime import date, datetime, time, timedelta, timezone

DAY, WEEK, MONTH = "day", "week", "month"


def last_full(period: str, today: date) -> tuple[date, date]:
    """The last whole day, ISO week (Monday to Monday) or calendar month that ended by `today`."""
    if period == DAY:
        return today - timedelta(days=1), today
    if period == WEEK:
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday
    if period == MONTH:
        first = today.replace(day=1)
        return (first - timedelta(days=1)).replace(day=1), first
    raise ValueError(f"unknown period {period!r}")


def midnight(day: date) -> datetime:
    """The instant a day starts, in UTC (the rollups' days are UTC days too)."""
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def label(start: date, end: date) -> str:
    """How people write the period: its first and last day, both included."""
    last = end - timedelta(days=1)
    return start.isoformat() if last == start else f"{start.isoformat()} – {last.isoformat()}"
