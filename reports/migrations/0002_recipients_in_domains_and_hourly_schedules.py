"""Reports remember whom they were not mailed to, and schedules saved before the hourly limit fire hourly."""
from django.db import migrations, models
from django.utils import timezone

CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def at_most_hourly(apps, schema_editor):
    """A schedule whose minute field fires more than once an hour keeps only its first minute; its beat
    entry follows, and the change is recorded in the organization's audit trail like any other."""
    from celery.schedules import crontab

    ReportSchedule = apps.get_model("reports", "ReportSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    OutboxEntry = apps.get_model("audit", "OutboxEntry")
    changed = False
    for schedule in ReportSchedule.objects.select_related("periodic_task").order_by("pk"):
        minute, *rest = schedule.cron.split()
        if minute.isdecimal():
            continue
        state = {"id": schedule.pk, "name": schedule.name, "cadence": schedule.cadence, "cron": schedule.cron,
                 "period": schedule.period, "recipients": schedule.recipients, "formats": schedule.formats,
                 "active": schedule.active}
        schedule.cron = " ".join([str(min(crontab(minute=minute).minute)), *rest])
        schedule.save(update_fields=["cron"])
        if schedule.periodic_task is not None:
            fields = dict(zip(CRON_FIELDS, schedule.cron.split()))
            timing = (CrontabSchedule.objects.filter(timezone="UTC", **fields).order_by("pk").first()
                      or CrontabSchedule.objects.create(timezone="UTC", **fields))
            schedule.periodic_task.crontab = timing
            schedule.periodic_task.save(update_fields=["crontab"])
        OutboxEntry.objects.create(
            organization_id=schedule.organization_id, kind="report.scheduled", occurred_at=timezone.now(),
            actor={"kind": "system", "id": None, "name": "migration: reports run at most hourly"},
            payload={"action": "changed", "before": state, "after": {**state, "cron": schedule.cron}})
        changed = True
    if changed:  # tells a running beat to reload its schedule
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0001_initial'),
        ('audit', '0005_exposure_seen_by_id'),
    ]

    operations = [
        migrations.AddField(
            model_name='report',
            name='undelivered_to',
            field=models.JSONField(blank=True, default=list, help_text="Recipients not mailed: outside the organization's e-mail domains when the report was sent."),
        ),
        migrations.AlterField(
            model_name='reportschedule',
            name='cron',
            field=models.CharField(help_text='minute hour day-of-month month day-of-week, in UTC; the minute one number (at most hourly).', max_length=100),
        ),
        migrations.AlterField(
            model_name='reportschedule',
            name='recipients',
            field=models.JSONField(default=list, help_text="E-mail addresses, in the organization's e-mail domains."),
        ),
        migrations.RunPython(at_most_hourly, migrations.RunPython.noop),
    ]
