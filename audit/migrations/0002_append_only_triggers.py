"""Audit events and digests are append-only: the database itself refuses UPDATE and DELETE."""
from django.db import migrations

from config.append_only import migration_operation


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migration_operation("audit_auditevent", "audit_auditdigest")]
