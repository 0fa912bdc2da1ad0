"""Consent history cannot be emptied by TRUNCATE either, which row triggers never see."""
from django.db import migrations

from config.append_only import truncate_migration_operation


class Migration(migrations.Migration):
    dependencies = [("governance", "0005_consent_policy_version")]
    operations = [truncate_migration_operation("governance_consentevent")]
