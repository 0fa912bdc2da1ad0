"""Consent history is append-only: the database refuses UPDATE and DELETE of consent events."""
from django.db import migrations

from config.append_only import migration_operation


class Migration(migrations.Migration):
    dependencies = [("governance", "0003_consent_events")]
    operations = [migration_operation("governance_consentevent")]
