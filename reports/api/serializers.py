from datetime import timedelta

from celery.schedules import crontab
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api import StrictModelSerializer, StrictSerializer

from .. import services
from ..models import Cadence, Format, Period, Report, ReportFile, ReportSchedule


class ReportScheduleSerializer(StrictModelSerializer):
    cadence = serializers.ChoiceField(Cadence.choices, help_text="weekly (Mondays 06:00 UTC, the previous week), "
                                                                 "monthly (the 1st, 06:00 UTC, the previous month) "
                                                                 "or cron.")
    cron = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=100,
                                 help_text="With cadence=cron: 'minute hour day-of-month month day-of-week', UTC. "
                                           "At most hourly: the minute is one number (0-59).")
    period = serializers.ChoiceField(Period.choices, required=False, allow_null=True,
                                     help_text="With cadence=cron: the last full day, week or month before each run "
                                               "(default day).")
    recipients = serializers.ListField(child=serializers.EmailField(), required=False, max_length=100,
                                       help_text="E-mail addresses in the organization's e-mail domains (exactly "
                                                 "those domains, not their subdomains), which owners set.")
    formats = serializers.ListField(child=serializers.ChoiceField(Format.choices), required=False, allow_empty=False)
    next_run_at = serializers.SerializerMethodField()

    class Meta:
        model = ReportSchedule
        fields = ["id", "name", "cadence", "cron", "period", "recipients", "formats", "active", "next_run_at",
                  "last_run_at", "created_by", "created_at", "updated_at"]
        read_only_fields = ["last_run_at", "created_by", "created_at", "updated_at"]
        validators = []

    @extend_schema_field(serializers.DateTimeField(allow_null=True, help_text="Null while the schedule is inactive."))
    def get_next_run_at(self, schedule):
        if not schedule.active:
            return None
        now = timezone.now()
        due = now + crontab(**services.cron_fields(schedule.cron)).remaining_estimate(now)
        return (due + timedelta(seconds=30)).replace(second=0, microsecond=0)  # the estimate is a hair early


class ReportFileSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="Where to download it.")

    class Meta:
        model = ReportFile
        fields = ["format", "filename", "content_type", "size", "sha256", "url"]

    def get_url(self, file) -> str:
        path = reverse("v1:report-download", kwargs={"pk": file.report_id}) + f"?format={file.format}"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class ReportSerializer(serializers.ModelSerializer):
    files = ReportFileSerializer(many=True, read_only=True)
    period_label = serializers.CharField(read_only=True, help_text="First and last day, both included.")

    class Meta:
        model = Report
        fields = ["id", "period_start", "period_end", "period_label", "formats", "status", "progress", "schedule",
                  "requested_by", "created_at", "started_at", "finished_at", "attempts", "error", "summary",
                  "delivered_at", "undelivered_to", "files"]
        read_only_fields = fields


class ReportRequestSerializer(StrictSerializer):
    period_start = serializers.DateField(help_text="The first day of the period (UTC).")
    period_end = serializers.DateField(help_text="The first day after the period (UTC); at most tomorrow.")
    formats = serializers.ListField(child=serializers.ChoiceField(Format.choices), required=False, allow_empty=False,
                                    help_text="Default: all of pdf, html, csv, json.")


class DownloadQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(Format.choices)
