"""Compliance reports: the schedules that produce them and the reports with their files."""
from django.db import models
from django.db.models import Q
from django.utils import timezone

from . import periods


class Cadence(models.TextChoices):
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    CRON = "cron", "Cron expression"


class Period(models.TextChoices):
    DAY = periods.DAY, "The previous day"
    WEEK = periods.WEEK, "The previous week"
    MONTH = periods.MONTH, "The previous month"


class Format(models.TextChoices):
    PDF = "pdf", "PDF"
    HTML = "html", "HTML"
    CSV = "csv", "CSV tables (zip)"
    JSON = "json", "JSON"


ALL_FORMATS = [choice.value for choice in Format]
# Weekly and monthly reports run at 06:00 UTC, on Mondays and on the first of the month.
CADENCE_CRON = {Cadence.WEEKLY: "0 6 * * 1", Cadence.MONTHLY: "0 6 1 * *"}
CADENCE_PERIOD = {Cadence.WEEKLY: Period.WEEK, Cadence.MONTHLY: Period.MONTH}


class ReportSchedule(models.Model):
    """When an organization's report is produced and who receives it.

    Each schedule owns one django-celery-beat PeriodicTask (written by `reports.services`), which
    celery beat's DatabaseScheduler fires; a run reports on the last full `period` before it.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    cadence = models.CharField(max_length=8, choices=Cadence.choices)
    cron = models.CharField(max_length=100, help_text="minute hour day-of-month month day-of-week, in UTC; the "
                                                      "minute one number (at most hourly).")
    period = models.CharField(max_length=8, choices=Period.choices)
    recipients = models.JSONField(default=list, help_text="E-mail addresses, in the organization's e-mail domains.")
    formats = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")
    created_by = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="report_schedule_unique_name")]

    def __str__(self):
        return f"{self.organization_id}/{self.name}"


class Report(models.Model):
    """One report of one organization over [period_start, period_end), in one or more formats."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)  # led by the (organization, id) index
    schedule = models.ForeignKey(ReportSchedule, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="reports")
    period_start = models.DateField()
    period_end = models.DateField(help_text="The first day after the period.")
    formats = models.JSONField(default=list)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    requested_by = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Touched by every progress step: a report queued or running whose row stopped moving was lost.
    updated_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="The headline figures.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_attempts = models.PositiveIntegerField(default=0)
    undelivered_to = models.JSONField(default=list, blank=True,
                                      help_text="Recipients not mailed: outside the organization's e-mail domains "
                                                "when the report was sent.")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(period_start__lt=models.F("period_end")), name="report_period_order"),
            # A schedule reports on each period once, however often beat fires.
            models.UniqueConstraint(fields=["schedule", "period_start", "period_end"],
                                    condition=Q(schedule__isnull=False), name="report_once_per_schedule_period"),
        ]
        indexes = [models.Index(fields=["organization", "id"]), models.Index(fields=["status", "updated_at"])]

    @property
    def period_label(self) -> str:
        return periods.label(self.period_start, self.period_end)


class ReportFile(models.Model):
    """One rendered format of a report, kept in the database beside the report's row.

    In the database rather than on a file system: a report is done exactly when its files are
    committed with it, every worker and web process on every host reads the same files without a
    shared volume, and the embedded default needs nothing else.
    """

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="files")
    format = models.CharField(max_length=8, choices=Format.choices)
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "format"], name="report_file_unique_format")]
