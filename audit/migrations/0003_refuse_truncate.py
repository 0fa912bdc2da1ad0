"""Audit events and digests cannot be emptied by TRUNCATE either, which row triggers never see."""
from django.db import migrations

from config.append_only import truncate_migration_operation


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]
    operations = [truncate_migration_operation("audit_auditevent", "audit_auditdigest")]
