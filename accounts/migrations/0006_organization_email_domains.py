from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_membership_policy_version'),
    ]

    operations = [
        migrations.AddField(
            model_name='organization',
            name='email_domains',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
