"""Format 2: each organization's log becomes a Merkle tree whose first leaves are its existing events.

The events' rows get their leaf (seq - 1) and the tree's tiles and frontier are built from their
bodies, in seq order; the append-only triggers are lifted for that one UPDATE and installed again.
"""
import django.db.models.deletion
from django.db import migrations, models

from config import append_only

APPEND_ONLY = ("audit_auditevent", "audit_auditdigest")


def build_trees(apps, schema_editor):
    from audit import merkle

    AuditEvent, ChainHead, MerkleTile = (apps.get_model("audit", name) for name in
                                         ("AuditEvent", "ChainHead", "MerkleTile"))
    AuditEvent.objects.update(leaf_index=models.F("seq") - 1)
    for head in ChainHead.objects.order_by("pk"):
        frontier = merkle.Frontier()
        bodies = (AuditEvent.objects.filter(organization_id=head.pk).order_by("seq")
                  .values_list("body", flat=True).iterator(chunk_size=10_000))
        tiles = frontier.append(merkle.leaf_hash(body.encode()) for body in bodies)
        MerkleTile.objects.bulk_create([MerkleTile(organization_id=head.pk, level=level, index=index, hashes=blob)
                                        for level, index, blob in tiles], batch_size=500)
        ChainHead.objects.filter(pk=head.pk).update(tree_size=frontier.size, tree_root=frontier.root().hex(),
                                                    tree_edge=frontier.pack())


def unbuild(apps, schema_editor):
    apps.get_model("audit", "MerkleTile").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0007_orgrole'),
        ('audit', '0009_console_user_kinds'),
    ]

    operations = [
        migrations.RunPython(lambda apps, editor: append_only.remove(editor, APPEND_ONLY),
                             lambda apps, editor: append_only.install(editor, APPEND_ONLY)),
        migrations.CreateModel(
            name='MerkleTile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('level', models.SmallIntegerField()),
                ('index', models.BigIntegerField()),
                ('hashes', models.BinaryField(help_text='256 SHA-256 hashes, 8,192 bytes.')),
            ],
        ),
        migrations.AddField(
            model_name='auditdigest',
            name='root_hash',
            field=models.CharField(blank=True, help_text="Format 2: the tree's root at tree_size.", max_length=64),
        ),
        migrations.AddField(
            model_name='auditdigest',
            name='tree_size',
            field=models.BigIntegerField(blank=True, help_text="Format 2: the signed tree head's size.", null=True),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='leaf_index',
            field=models.BigIntegerField(help_text="Its leaf in the organization's Merkle tree: its body is the entry.", null=True),
        ),
        migrations.AddField(
            model_name='chainhead',
            name='tree_edge',
            field=models.BinaryField(default=b'', help_text="The tree's nodes not in a full tile yet (audit.merkle)."),
        ),
        migrations.AddField(
            model_name='chainhead',
            name='tree_root',
            field=models.CharField(default='e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', max_length=64),
        ),
        migrations.AddField(
            model_name='chainhead',
            name='tree_size',
            field=models.BigIntegerField(default=0, help_text="Leaves in the organization's Merkle tree."),
        ),
        migrations.AlterField(
            model_name='outboxentry',
            name='kind',
            field=models.CharField(choices=[('organization.created', 'Organization Created'), ('organization.changed', 'Organization Changed'), ('policy.changed', 'Policy Changed'), ('group.created', 'Group Created'), ('group.changed', 'Group Changed'), ('group.deleted', 'Group Deleted'), ('account.provisioned', 'Account Provisioned'), ('account.changed', 'Account Changed'), ('account.deactivated', 'Account Deactivated'), ('membership.changed', 'Membership Changed'), ('token.created', 'Token Created'), ('token.revoked', 'Token Revoked'), ('console.login', 'Console Login'), ('console.sign_in_refused', 'Console Sign In Refused'), ('console.sign_in_changed', 'Console Sign In Changed'), ('console_user.invited', 'Console User Invited'), ('console_user.invitation_accepted', 'Console User Invitation Accepted'), ('console_user.invitation_revoked', 'Console User Invitation Revoked'), ('console_user.removed', 'Console User Removed'), ('console_user.mfa_changed', 'Console User Mfa Changed'), ('console_user.password_reset', 'Console User Password Reset'), ('terms.published', 'Terms Published'), ('consent.granted', 'Consent Granted'), ('consent.revoked', 'Consent Revoked'), ('flow.permitted', 'Flow Permitted'), ('flow.violation', 'Flow Violation'), ('flow.batch', 'Flow Batch'), ('webhook.changed', 'Webhook Changed'), ('report.scheduled', 'Report Scheduled'), ('report.generated', 'Report Generated')], max_length=48),
        ),
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.UniqueConstraint(fields=('organization', 'leaf_index'), name='audit_event_unique_leaf'),
        ),
        migrations.AddField(
            model_name='merkletile',
            name='organization',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organization'),
        ),
        migrations.AddConstraint(
            model_name='merkletile',
            constraint=models.UniqueConstraint(fields=('organization', 'level', 'index'), name='merkle_tile_unique'),
        ),
        migrations.RunPython(build_trees, unbuild),
        migrations.AlterField(
            model_name='auditevent',
            name='leaf_index',
            field=models.BigIntegerField(help_text="Its leaf in the organization's Merkle tree: its body is the entry."),
        ),
        migrations.RunPython(lambda apps, editor: append_only.install(editor, APPEND_ONLY + ("audit_merkletile",)),
                             lambda apps, editor: append_only.remove(editor, APPEND_ONLY + ("audit_merkletile",))),
    ]
