"""The flow models, moved from the audit app: their tables (audit_*) exist already, so only the state changes."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('audit', '0007_organization_changed_kind'),
        ('accounts', '0006_organization_email_domains'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='FlowBatch',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('received', 'Received'), ('done', 'Done')], default='received', max_length=12)),
                        ('flow_count', models.IntegerField()),
                        ('payload', models.BinaryField(help_text='The validated flows, JSON, accounts resolved to ids.')),
                        ('received_at', models.DateTimeField()),
                        ('processed_at', models.DateTimeField(blank=True, null=True)),
                        ('submitted_by', models.JSONField()),
                        ('counts', models.JSONField(default=dict, help_text='Flows by verdict, and duplicates ignored.')),
                        ('attempts', models.IntegerField(default=0)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'audit_flowbatch',
                    },
                ),
                migrations.CreateModel(
                    name='TelemetryFlow',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('flow_id', models.CharField(help_text="The reporter's id: a flow is judged once.", max_length=200)),
                        ('occurred_at', models.DateTimeField()),
                        ('data_category', models.CharField(max_length=100)),
                        ('purpose', models.CharField(max_length=100)),
                        ('destination', models.CharField(max_length=200)),
                        ('volume', models.BigIntegerField(default=0)),
                        ('account_count', models.IntegerField()),
                        ('verdict', models.CharField(choices=[('permitted', 'Permitted'), ('violation', 'Violation')], max_length=12)),
                        ('blocking_accounts', models.JSONField(default=list)),
                        ('reasons', models.JSONField(default=list)),
                        ('policy_version', models.BigIntegerField()),
                        ('audit_seq', models.BigIntegerField()),
                        ('recorded_at', models.DateTimeField()),
                        ('batch', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='flows', to='flows.flowbatch')),
                        ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'audit_telemetryflow',
                    },
                ),
                migrations.CreateModel(
                    name='FlowAccount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('blocking', models.BooleanField(default=False)),
                        ('account', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.account')),
                        ('flow', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='account_links', to='flows.telemetryflow')),
                    ],
                    options={
                        'db_table': 'audit_flowaccount',
                    },
                ),
                migrations.CreateModel(
                    name='WebhookEndpoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('url', models.URLField(max_length=500)),
                        ('secret', models.CharField(help_text='Shared secret for the X-Signature-256 header.', max_length=128)),
                        ('active', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'audit_webhookendpoint',
                    },
                ),
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('body', models.TextField()),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('failed', 'Failed')], default='pending', max_length=12)),
                        ('attempts', models.IntegerField(default=0)),
                        ('last_error', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='flows.webhookendpoint')),
                    ],
                    options={
                        'verbose_name_plural': 'webhook deliveries',
                        'db_table': 'audit_webhookdelivery',
                    },
                ),
                migrations.CreateModel(
                    name='ExposureRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('group_key', models.BigIntegerField()),
                        ('data_category', models.CharField(max_length=100)),
                        ('purpose', models.CharField(max_length=100)),
                        ('destination', models.CharField(max_length=200)),
                        ('verdict', models.CharField(choices=[('permitted', 'Permitted'), ('violation', 'Violation')], max_length=12)),
                        ('flows', models.BigIntegerField(default=0)),
                        ('volume', models.BigIntegerField(default=0)),
                        ('accounts', models.BigIntegerField(default=0, help_text='Distinct accounts that day.')),
                        ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'audit_exposurerollup',
                        'constraints': [models.UniqueConstraint(fields=('organization', 'day', 'group_key', 'data_category', 'purpose', 'destination', 'verdict'), name='rollup_unique_cell')],
                    },
                ),
                migrations.CreateModel(
                    name='ExposureSeen',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('account_id', models.BigIntegerField()),
                        ('data_category', models.CharField(max_length=100)),
                        ('purpose', models.CharField(max_length=100)),
                        ('destination', models.CharField(max_length=200)),
                        ('verdict', models.CharField(choices=[('permitted', 'Permitted'), ('violation', 'Violation')], max_length=12)),
                        ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'audit_exposureseen',
                        'indexes': [models.Index(fields=['organization', 'id'], name='audit_expos_organiz_d5c158_idx')],
                        'constraints': [models.UniqueConstraint(fields=('organization', 'day', 'account_id', 'data_category', 'purpose', 'destination', 'verdict'), name='exposure_seen_unique')],
                    },
                ),
                migrations.AddIndex(
                    model_name='flowbatch',
                    index=models.Index(fields=['status', 'received_at'], name='audit_flowb_status_0678a4_idx'),
                ),
                migrations.AddIndex(
                    model_name='telemetryflow',
                    index=models.Index(fields=['organization', 'occurred_at'], name='audit_telem_organiz_158c53_idx'),
                ),
                migrations.AddIndex(
                    model_name='telemetryflow',
                    index=models.Index(fields=['organization', 'verdict', 'occurred_at'], name='audit_telem_organiz_6187df_idx'),
                ),
                migrations.AddConstraint(
                    model_name='telemetryflow',
                    constraint=models.UniqueConstraint(fields=('organization', 'flow_id'), name='flow_unique_id'),
                ),
                migrations.AddIndex(
                    model_name='flowaccount',
                    index=models.Index(fields=['account', 'flow'], name='audit_flowa_account_b01d8f_idx'),
                ),
                migrations.AddIndex(
                    model_name='webhookdelivery',
                    index=models.Index(fields=['status', 'created_at'], name='audit_webho_status_171f85_idx'),
                ),
            ],
            database_operations=[],
        ),
    ]
