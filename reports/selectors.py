"""Reads of the reports app: reports, their files and schedules, and the ones a sweep must pick up again."""
from datetime import timedelta

from django.utils import timezone

from accounts.models import Organization

from .models import Report, ReportSchedule


def reports_of(organization: Organization):
    return Report.objects.filter(organization=organization)


def schedules_of(organization: Organization):
    return ReportSchedule.objects.filter(organization=organization).select_related("periodic_task__crontab")


def report_file(report: Report, format: str):
    return report.files.filter(format=format).first()


def reports_needing_work(older_than: timedelta, limit: int = 100) -> list[tuple[int, int]]:
    """(id, attempts) of reports queued or running whose row has not moved for `older_than`: their task was lost."""
    cutoff = timezone.now() - older_than
    return list(Report.objects.filter(status__in=[Report.Status.QUEUED, Report.Status.RUNNING],
                                      updated_at__lte=cutoff)
                .order_by("updated_at").values_list("pk", "attempts")[:limit])


def reports_needing_delivery(older_than: timedelta, max_attempts: int, limit: int = 100) -> list[int]:
    """Scheduled reports done for `older_than` and not yet delivered (the mail server was away)."""
    cutoff = timezone.now() - older_than
    return list(Report.objects.filter(status=Report.Status.DONE, schedule__isnull=False, delivered_at__isnull=True,
                                      finished_at__lte=cutoff, delivery_attempts__lt=max_attempts)
                .order_by("finished_at").values_list("pk", flat=True)[:limit])
