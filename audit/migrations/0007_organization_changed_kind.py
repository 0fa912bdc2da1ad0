from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0006_chain_stall_and_repairs'),
    ]

    operations = [
        migrations.AlterField(
            model_name='outboxentry',
            name='kind',
            field=models.CharField(choices=[('organization.created', 'Organization Created'), ('organization.changed', 'Organization Changed'), ('policy.changed', 'Policy Changed'), ('group.created', 'Group Created'), ('group.changed', 'Group Changed'), ('group.deleted', 'Group Deleted'), ('account.provisioned', 'Account Provisioned'), ('account.changed', 'Account Changed'), ('account.deactivated', 'Account Deactivated'), ('membership.changed', 'Membership Changed'), ('token.created', 'Token Created'), ('token.revoked', 'Token Revoked'), ('console.login', 'Console Login'), ('terms.published', 'Terms Published'), ('consent.granted', 'Consent Granted'), ('consent.revoked', 'Consent Revoked'), ('flow.permitted', 'Flow Permitted'), ('flow.violation', 'Flow Violation'), ('webhook.changed', 'Webhook Changed'), ('report.scheduled', 'Report Scheduled'), ('report.generated', 'Report Generated')], max_length=48),
        ),
    ]
