"""The console's days: the periods its pages count over, ending today, and the instant a day starts."""
from datetime import date, datetime, timedelta

from django.utils import timezone

PERIODS = (7, 30, 90)


def period(days: int, today: date | None = None) -> tuple[date, date]:
    until = today or timezone.now().date()
    return until - timedelta(days=days - 1), until


def first_day(today: date) -> date:
    """The first day the longest period of the overview shows."""
    return today - timedelta(days=PERIODS[-1] - 1)


def start_of(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=timezone.get_current_timezone())


def instants(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """The instant the day `since` starts and the one the day `until` ends (the next one starts), for a
    filter's days, both included; None for a day not given."""
    return (start_of(since) if since else None, start_of(until + timedelta(days=1)) if until else None)
