"""A console user's role is an `OrgRole`, not a "Membership" (which also means a person's group
membership). The table is renamed in place: every row stays."""
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0006_organization_email_domains"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameModel("Membership", "OrgRole"),
        migrations.RemoveConstraint(model_name="orgrole", name="membership_unique"),
        migrations.AddConstraint(model_name="orgrole",
                                 constraint=models.UniqueConstraint(fields=["user", "organization"],
                                                                    name="org_role_unique")),
        migrations.AlterField(model_name="orgrole", name="user",
                              field=models.ForeignKey(on_delete=models.deletion.CASCADE, related_name="org_roles",
                                                      to=settings.AUTH_USER_MODEL)),
        migrations.AlterField(model_name="orgrole", name="organization",
                              field=models.ForeignKey(on_delete=models.deletion.CASCADE, related_name="org_roles",
                                                      to="accounts.organization")),
    ]
