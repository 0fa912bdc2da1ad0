"""The flow models moved to the flows app (flows 0001): removed from audit's state only; every table, row,
index and constraint stays."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0007_organization_changed_kind'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='exposureseen',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='flowaccount',
                    name='account',
                ),
                migrations.RemoveField(
                    model_name='flowaccount',
                    name='flow',
                ),
                migrations.RemoveField(
                    model_name='flowbatch',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='telemetryflow',
                    name='batch',
                ),
                migrations.RemoveField(
                    model_name='telemetryflow',
                    name='organization',
                ),
                migrations.RemoveField(
                    model_name='webhookdelivery',
                    name='endpoint',
                ),
                migrations.RemoveField(
                    model_name='webhookendpoint',
                    name='organization',
                ),
                migrations.DeleteModel(
                    name='ExposureRollup',
                ),
                migrations.DeleteModel(
                    name='ExposureSeen',
                ),
                migrations.DeleteModel(
                    name='FlowAccount',
                ),
                migrations.DeleteModel(
                    name='FlowBatch',
                ),
                migrations.DeleteModel(
                    name='TelemetryFlow',
                ),
                migrations.DeleteModel(
                    name='WebhookDelivery',
                ),
                migrations.DeleteModel(
                    name='WebhookEndpoint',
                ),
            ],
            database_operations=[],
        ),
    ]
