from django.contrib import admin

from config.admin import ReadOnlyAdmin

from .models import AuditDigest, AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["organization", "seq", "kind", "occurred_at", "actor_name", "hash"]
    list_filter = ["organization", "kind"]


@admin.register(AuditDigest)
class AuditDigestAdmin(ReadOnlyAdmin):
    list_display = ["organization", "period_end", "first_seq", "last_seq", "event_count", "key_fingerprint"]
