from django.contrib import admin

from config.admin import ReadOnlyAdmin

from .models import Report, ReportSchedule


@admin.register(ReportSchedule)
class ReportScheduleAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "cadence", "cron", "period", "active", "last_run_at"]
    list_filter = ["organization", "cadence", "active"]


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization", "period_start", "period_end", "status", "progress", "schedule",
                    "finished_at", "delivered_at"]
    list_filter = ["organization", "status"]
