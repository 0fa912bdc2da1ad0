"""Writes of the reports app: schedules (each with its celery beat entry), reports, their files, delivery.

Every schedule change is audited (`report.scheduled`), and so is every finished report
(`report.generated`, naming the SHA-256 of each file), in the transaction that makes it.
"""
import hashlib
import json
import logging
from datetime import date, datetime, timedelta

from celery.schedules import crontab
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from accounts.models import Organization
from audit import services as audit
from audit.actors import Actor
from audit.models import EventKind
from audit.selectors import covering_digest
from config.tasks import enqueue_on_commit

from . import content, periods
from .models import (ALL_FORMATS, CADENCE_CRON, CADENCE_PERIOD, Cadence, Format, Period, Report, ReportFile,
                     ReportSchedule)
from .rendering import Rendered, render

log = logging.getLogger(__name__)

RUN_SCHEDULE_TASK = "reports.tasks.run_schedule"
MAX_PERIOD_DAYS = 366
MAX_ATTEMPTS = 5
# A scheduled report still queued this long after beat made it lost its task: the next run re-drives it.
REDRIVE_QUEUED_AFTER = timedelta(minutes=1)
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


# --- Schedules -------------------------------------------------------------------------------------------

def cron_fields(expression: str) -> dict[str, str]:
    """'0 6 * * 1' -> {minute, hour, day_of_month, month_of_year, day_of_week}, or a ValidationError."""
    parts = (expression or "").split()
    if len(parts) != 5:
        raise ValidationError({"cron": "Give five fields: minute hour day-of-month month day-of-week (UTC)."})
    fields = dict(zip(CRON_FIELDS, parts))
    try:
        crontab(**fields)
    except (ValueError, IndexError) as exc:
        raise ValidationError({"cron": f"Not a valid cron expression: {exc}."}) from None
    return fields


def _at_most_hourly(cron: str) -> None:
    """Refuse a cron expression that fires more than once an hour: its minute must be one number."""
    minute = cron.split()[0]
    if not (minute.isdecimal() and int(minute) < 60):
        raise ValidationError({"cron": f"Reports run at most hourly: give the minute as one number from 0 to 59 "
                                       f"(e.g. '0 * * * *'), not {minute!r}."})


def _checked_recipients(organization: Organization, recipients) -> None:
    """Refuse recipients outside the organization's own e-mail domains, each naming its place in the list."""
    if recipients and not organization.email_domains:
        raise ValidationError({"recipients": "This organization has no e-mail domains, so reports can be mailed to "
                                             "nobody: an owner sets them in the console under Settings (or "
                                             "`manage.py create_org --email-domain` for a new organization)."})
    outside = {f"recipients[{index}]": f"{address!r} is outside the organization's e-mail domains "
                                       f"({', '.join(organization.email_domains)}); subdomains are not included."
               for index, address in enumerate(recipients) if not organization.mails_to(address)}
    if outside:
        raise ValidationError(outside)


def _checked_schedule(*, cadence: str, cron: str | None, period: str | None, recipients, formats) -> dict:
    """The schedule's fields made whole and checked: weekly and monthly fix the cron and the period."""
    errors = {}
    if cadence not in Cadence.values:
        raise ValidationError({"cadence": f"Must be one of: {', '.join(Cadence.values)}."})
    if cadence in CADENCE_CRON:
        for name, given, fixed in (("cron", cron, CADENCE_CRON[cadence]), ("period", period, CADENCE_PERIOD[cadence])):
            if given not in (None, "", fixed):
                errors[name] = f"Set by the {cadence} cadence ('{fixed}'); use the cron cadence to choose it."
        cron, period = CADENCE_CRON[cadence], CADENCE_PERIOD[cadence]
    else:
        if not cron:
            errors["cron"] = "Required with the cron cadence."
        period = period or Period.DAY
    if period not in Period.values:
        errors["period"] = f"Must be one of: {', '.join(Period.values)}."
    recipients = list(dict.fromkeys(address.strip() for address in recipients))
    for address in recipients:
        try:
            validate_email(address)
        except ValidationError:
            errors["recipients"] = f"Not an e-mail address: {address!r}."
    formats = list(formats) if formats is not None else list(ALL_FORMATS)
    if not formats or set(formats) - set(ALL_FORMATS):
        errors["formats"] = f"Choose among: {', '.join(ALL_FORMATS)}."
    if errors:
        raise ValidationError(errors)
    if cron:
        cron = " ".join(cron_fields(cron).values())
        _at_most_hourly(cron)
    return {"cadence": cadence, "cron": cron, "period": period, "recipients": recipients,
            "formats": [f for f in ALL_FORMATS if f in formats]}


def schedule_state(schedule: ReportSchedule) -> dict:
    return {"id": schedule.pk, "name": schedule.name, "cadence": schedule.cadence, "cron": schedule.cron,
            "period": schedule.period, "recipients": schedule.recipients, "formats": schedule.formats,
            "active": schedule.active}


def _sync_beat(schedule: ReportSchedule) -> None:
    """Write the schedule's PeriodicTask (and its crontab) for celery beat's DatabaseScheduler."""
    fields = cron_fields(schedule.cron)
    timing = CrontabSchedule.objects.filter(timezone="UTC", **fields).order_by("pk").first()
    if timing is None:
        timing = CrontabSchedule.objects.create(timezone="UTC", **fields)
    values = {"name": f"report-schedule-{schedule.pk}", "task": RUN_SCHEDULE_TASK, "crontab": timing,
              "interval": None, "args": json.dumps([schedule.pk]), "enabled": schedule.active,
              "description": f"Compliance report '{schedule.name}' of {schedule.organization.slug}"}
    task = schedule.periodic_task
    if task is None:
        schedule.periodic_task = PeriodicTask.objects.create(**values)
        schedule.save(update_fields=["periodic_task"])
        return
    for name, value in values.items():
        setattr(task, name, value)
    task.save()  # PeriodicTask.save tells the running beat to reload its schedule


@transaction.atomic
def create_schedule(*, organization: Organization, actor: Actor, name: str, cadence: str, cron: str | None = None,
                    period: str | None = None, recipients=(), formats=None, active: bool = True) -> ReportSchedule:
    """Create a report schedule and the beat entry that runs it."""
    values = _checked_schedule(cadence=cadence, cron=cron, period=period, recipients=recipients, formats=formats)
    _checked_recipients(organization, list(recipients))
    if ReportSchedule.objects.filter(organization=organization, name=name).exists():
        raise ValidationError({"name": f"A schedule named '{name}' exists already."})
    schedule = ReportSchedule.objects.create(organization=organization, name=name, active=active,
                                             created_by=actor.as_dict(), **values)
    _sync_beat(schedule)
    audit.record(organization=organization, kind=EventKind.REPORT_SCHEDULED, actor=actor,
                 payload={"action": "created", "before": None, "after": schedule_state(schedule)})
    return schedule


@transaction.atomic
def update_schedule(*, schedule: ReportSchedule, actor: Actor, **changes) -> ReportSchedule:
    """Change a schedule; its beat entry follows (disabled while the schedule is inactive)."""
    schedule = ReportSchedule.objects.select_for_update(of=("self",)).select_related("organization", "periodic_task").get(
        pk=schedule.pk)
    before = schedule_state(schedule)
    unknown = set(changes) - {"name", "cadence", "cron", "period", "recipients", "formats", "active"}
    if unknown:
        raise ValidationError({name: "Cannot be changed." for name in unknown})
    cadence = changes.get("cadence", schedule.cadence)
    own_timing = cadence == Cadence.CRON  # weekly and monthly fix their own cron and period
    values = _checked_schedule(
        cadence=cadence, cron=changes.get("cron", schedule.cron if own_timing else None),
        period=changes.get("period", schedule.period if own_timing else None),
        recipients=changes.get("recipients", schedule.recipients), formats=changes.get("formats", schedule.formats))
    if "recipients" in changes:  # recipients kept as they were are checked again when the report is sent
        _checked_recipients(schedule.organization, list(changes["recipients"]))
    name = changes.get("name", schedule.name)
    if name != schedule.name and ReportSchedule.objects.filter(organization=schedule.organization, name=name).exists():
        raise ValidationError({"name": f"A schedule named '{name}' exists already."})
    schedule.name, schedule.active = name, changes.get("active", schedule.active)
    for field, value in values.items():
        setattr(schedule, field, value)
    after = schedule_state(schedule)
    if after == before:
        return schedule
    schedule.save()
    _sync_beat(schedule)
    audit.record(organization=schedule.organization, kind=EventKind.REPORT_SCHEDULED, actor=actor,
                 payload={"action": "changed", "before": before, "after": after})
    return schedule


@transaction.atomic
def delete_schedule(*, schedule: ReportSchedule, actor: Actor) -> None:
    """Delete a schedule and its beat entry; its reports stay."""
    schedule = ReportSchedule.objects.select_for_update().select_related("organization").get(pk=schedule.pk)
    audit.record(organization=schedule.organization, kind=EventKind.REPORT_SCHEDULED, actor=actor,
                 payload={"action": "deleted", "before": schedule_state(schedule), "after": None})
    task_id = schedule.periodic_task_id
    schedule.delete()
    for task in PeriodicTask.objects.filter(pk=task_id):
        task.delete()  # one by one: PeriodicTask.delete tells beat to reload


# --- Reports ---------------------------------------------------------------------------------------------

def check_period(period_start: date, period_end: date, *, today: date) -> None:
    errors = {}
    if period_start >= period_end:
        errors["period_end"] = "Must be after period_start (it is the first day after the period)."
    elif (period_end - period_start).days > MAX_PERIOD_DAYS:
        errors["period_end"] = f"A report covers at most {MAX_PERIOD_DAYS} days."
    if period_end > today + timedelta(days=1):
        errors["period_end"] = "Must not lie after tomorrow: a report covers days that have begun."
    if errors:
        raise ValidationError(errors)


def _generate_after_commit(report_id: int) -> None:
    # with the broker down the report stays queued, and the sweep re-drives it
    enqueue_on_commit("reports.tasks.generate_report", report_id)


def _deliver_after_commit(report_id: int) -> None:
    enqueue_on_commit("reports.tasks.deliver_report", report_id)


@transaction.atomic
def request_report(*, organization: Organization, actor: Actor, period_start: date, period_end: date,
                   formats=None, enqueue: bool = True) -> Report:
    """Queue a report of [period_start, period_end); a worker generates it once this transaction commits."""
    check_period(period_start, period_end, today=timezone.now().date())
    formats = list(formats) if formats else list(ALL_FORMATS)
    if set(formats) - set(ALL_FORMATS):
        raise ValidationError({"formats": f"Choose among: {', '.join(ALL_FORMATS)}."})
    report = Report.objects.create(organization=organization, period_start=period_start, period_end=period_end,
                                   formats=[f for f in ALL_FORMATS if f in formats], requested_by=actor.as_dict())
    if enqueue:
        _generate_after_commit(report.pk)
    return report


def _claim(report_id: int) -> Report | None:
    """Mark a queued or running report as running (again); None if it is done, failed or gone."""
    with transaction.atomic():
        report = (Report.objects.select_for_update().select_related("organization")
                  .filter(pk=report_id, status__in=[Report.Status.QUEUED, Report.Status.RUNNING]).first())
        if report is None:
            return None
        now = timezone.now()
        report.status, report.progress, report.updated_at = Report.Status.RUNNING, 1, now
        report.started_at, report.attempts, report.error = now, report.attempts + 1, ""
        report.save(update_fields=["status", "progress", "updated_at", "started_at", "attempts", "error"])
        return report


def _progress(report_id: int):
    def step(percent: int) -> None:
        Report.objects.filter(pk=report_id, status=Report.Status.RUNNING).update(progress=percent,
                                                                                 updated_at=timezone.now())
    return step


def _ensure_digest(organization: Organization, end_at: datetime, now: datetime) -> None:
    """A closed period's end must be vouched for by a signed digest; write one if none covers it yet."""
    if end_at <= now and covering_digest(organization, end_at) is None:
        audit.write_digest(organization)


def build_document(report: Report, *, progress=lambda percent: None) -> dict:
    """The report's content, and what differs at each generation of it (when, which report)."""
    organization = report.organization
    audit.drain_outbox(organization.pk)  # the period's changes may still wait in the outbox
    now = timezone.now()
    _ensure_digest(organization, periods.midnight(report.period_end), now)
    document = content.report_content(organization, start=report.period_start, end=report.period_end, now=now,
                                      progress=progress)
    document["generated"] = {**content.generation_facts(now), "report": report.pk}
    return document


def generate_report(report_id: int) -> Report | None:
    """Generate a report's files. Safe to run twice, or twice at once: the first to finish is kept."""
    report = _claim(report_id)
    if report is None:
        return None
    progress = _progress(report_id)
    try:
        document = build_document(report, progress=progress)
        progress(80)
        files = render(document, report.formats)
    except (OperationalError, InterfaceError):
        raise  # the database went away: the task retries, the row still says running
    except Exception as exc:
        log.exception("report %s failed", report_id)
        Report.objects.filter(pk=report_id, status=Report.Status.RUNNING).update(
            status=Report.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], updated_at=timezone.now(),
            finished_at=timezone.now())
        raise
    return _finish(report_id, document, files)


@transaction.atomic
def _finish(report_id: int, document: dict, files: list[Rendered]) -> Report:
    report = Report.objects.select_for_update().select_related("organization").get(pk=report_id)
    if report.status != Report.Status.RUNNING:
        return report  # another run finished it first, or it was given up on
    ReportFile.objects.filter(report=report).delete()
    stored = ReportFile.objects.bulk_create([
        ReportFile(report=report, format=f.format, filename=f.filename, content_type=f.content_type,
                   size=len(f.content), sha256=hashlib.sha256(f.content).hexdigest(), content=f.content)
        for f in files])
    now = timezone.now()
    report.status, report.progress, report.finished_at, report.updated_at = Report.Status.DONE, 100, now, now
    report.summary = document["summary"]
    report.save(update_fields=["status", "progress", "finished_at", "updated_at", "summary"])
    audit.record(organization=report.organization, kind=EventKind.REPORT_GENERATED, actor=Actor(**report.requested_by),
                 payload={"report": report.pk, "schedule": report.schedule_id,
                          "period_start": report.period_start.isoformat(), "period_end": report.period_end.isoformat(),
                          "files": {str(f.format): {"filename": f.filename, "size": f.size, "sha256": f.sha256}
                                    for f in stored},
                          "summary": report.summary})
    if report.schedule_id and report.delivered_at is None:
        _deliver_after_commit(report.pk)
    return report


def give_up(report_id: int) -> None:
    Report.objects.filter(pk=report_id, status__in=[Report.Status.QUEUED, Report.Status.RUNNING]).update(
        status=Report.Status.FAILED, error=f"Given up after {MAX_ATTEMPTS} attempts.", updated_at=timezone.now())


def download_url(report: Report, format: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{reverse('v1:report-download', kwargs={'pk': report.pk})}?format={format}"


def deliver_report(report_id: int) -> bool:
    """E-mail a scheduled report to its schedule's recipients, the PDF attached; once delivered, never again.

    Sent before it is marked delivered: a crash in between sends it twice rather than never. Only to
    recipients inside the organization's e-mail domains as they are now (they may have changed since
    the schedule was saved): the others are named in `undelivered_to` and logged, never mailed.
    """
    report = (Report.objects.select_related("organization", "schedule")
              .filter(pk=report_id, status=Report.Status.DONE, delivered_at__isnull=True).first())
    if report is None or report.schedule is None or not report.schedule.recipients:
        return False
    Report.objects.filter(pk=report.pk).update(delivery_attempts=F("delivery_attempts") + 1)
    organization = report.organization
    recipients = [address for address in report.schedule.recipients if organization.mails_to(address)]
    refused = [address for address in report.schedule.recipients if address not in recipients]
    if refused != report.undelivered_to:
        Report.objects.filter(pk=report.pk).update(undelivered_to=refused)
    if refused:
        log.warning("report %s of %s: not mailed to %s, outside the organization's e-mail domains (%s)",
                    report.pk, organization.slug, ", ".join(refused), ", ".join(organization.email_domains) or "none")
    if not recipients:
        return False
    files = {f.format: f for f in report.files.defer("content")}
    links = [(files[fmt].get_format_display(), download_url(report, fmt), files[fmt].size)
             for fmt in ALL_FORMATS if fmt in files]
    context = {"report": report, "organization": report.organization, "schedule": report.schedule,
               "summary": report.summary, "links": links, "pdf_attached": Format.PDF in files}
    message = EmailMessage(
        subject=f"Compliance report: {report.organization.name}, {report.period_label}",
        body=render_to_string("reports/email.txt", context), from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients)
    if Format.PDF in files:
        pdf = ReportFile.objects.filter(pk=files[Format.PDF].pk).values_list("content", flat=True).get()
        message.attach(files[Format.PDF].filename, bytes(pdf), "application/pdf")
    message.send()
    Report.objects.filter(pk=report.pk).update(delivered_at=timezone.now())
    return True


def run_schedule(schedule_id: int, *, now: datetime | None = None) -> Report | None:
    """What beat fires: the report of the last full period before now, made once per period however often
    this runs; delivered once it is done."""
    now = now or timezone.now()
    schedule = ReportSchedule.objects.select_related("organization").filter(pk=schedule_id, active=True).first()
    if schedule is None:
        return None
    start, end = periods.last_full(schedule.period, now.date())
    with transaction.atomic():
        report, created = Report.objects.get_or_create(
            schedule=schedule, period_start=start, period_end=end,
            defaults={"organization": schedule.organization, "formats": schedule.formats,
                      "requested_by": Actor("system", None, f"schedule {schedule.name}").as_dict()})
        ReportSchedule.objects.filter(pk=schedule.pk).update(last_run_at=now)
        if created or (report.status == Report.Status.QUEUED and report.updated_at < now - REDRIVE_QUEUED_AFTER):
            _generate_after_commit(report.pk)  # new, or still waiting for a worker since an earlier run: lost
        elif report.status == Report.Status.DONE and report.delivered_at is None:
            _deliver_after_commit(report.pk)
    return report
