"""The outbox: every state change writes one row here in its own transaction; workers chain them."""
from django.db import models

from .chain import GENESIS_HASH
from .merkle import EMPTY_ROOT

EMPTY_ROOT_HEX = EMPTY_ROOT.hex()


class EventKind(models.TextChoices):
    ORGANIZATION_CREATED = "organization.created"
    ORGANIZATION_CHANGED = "organization.changed"
    POLICY_CHANGED = "policy.changed"
    GROUP_CREATED = "group.created"
    GROUP_CHANGED = "group.changed"
    GROUP_DELETED = "group.deleted"
    ACCOUNT_PROVISIONED = "account.provisioned"
    ACCOUNT_CHANGED = "account.changed"
    ACCOUNT_DEACTIVATED = "account.deactivated"
    MEMBERSHIP_CHANGED = "membership.changed"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    CONSOLE_LOGIN = "console.login"
    CONSOLE_SIGN_IN_REFUSED = "console.sign_in_refused"
    CONSOLE_SIGN_IN_CHANGED = "console.sign_in_changed"  # the IdP, SSO requirement, session lifetime
    CONSOLE_USER_INVITED = "console_user.invited"
    CONSOLE_USER_INVITATION_ACCEPTED = "console_user.invitation_accepted"
    CONSOLE_USER_INVITATION_REVOKED = "console_user.invitation_revoked"
    CONSOLE_USER_REMOVED = "console_user.removed"
    CONSOLE_USER_MFA_CHANGED = "console_user.mfa_changed"
    CONSOLE_USER_PASSWORD_RESET = "console_user.password_reset"
    TERMS_PUBLISHED = "terms.published"
    CONSENT_GRANTED = "consent.granted"
    CONSENT_REVOKED = "consent.revoked"
    FLOW_PERMITTED = "flow.permitted"
    FLOW_VIOLATION = "flow.violation"  # format 1: a flow was an event; now its leaf is in a batch
    FLOW_BATCH = "flow.batch"
    WEBHOOK_CHANGED = "webhook.changed"
    REPORT_SCHEDULED = "report.scheduled"
    REPORT_GENERATED = "report.generated"


class OutboxEntry(models.Model):
    """A change not yet chained. Written in the same transaction as the change it records."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)  # led by the composite indexes below
    kind = models.CharField(max_length=48, choices=EventKind.choices)
    occurred_at = models.DateTimeField()
    actor = models.JSONField()
    subject_account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+")
    payload = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["organization", "id"])]
        verbose_name_plural = "outbox entries"


class ChainHead(models.Model):
    """The last link of an organization's chain. Its row lock makes one writer at a time per organization.

    When the oldest pending outbox row cannot be chained, the chain stops there (skipping it would
    reorder the evidence) and the `stalled_*` columns say which row, since when and why, until an
    operator repairs the row (docs/operations.md) or a deploy makes it chainable.
    """

    organization = models.OneToOneField("accounts.Organization", on_delete=models.PROTECT, primary_key=True,
                                        related_name="+")
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    tree_size = models.BigIntegerField(default=0, help_text="Leaves in the organization's Merkle tree.")
    tree_root = models.CharField(max_length=64, default=EMPTY_ROOT_HEX)
    tree_edge = models.BinaryField(default=b"", help_text="The tree's nodes not in a full tile yet (audit.merkle).")
    updated_at = models.DateTimeField(auto_now=True)
    stalled_outbox_id = models.BigIntegerField(null=True, blank=True,
                                               help_text="The pending outbox row the chain cannot get past.")
    stalled_since = models.DateTimeField(null=True, blank=True)
    stall_error = models.TextField(blank=True)

    @property
    def stalled(self) -> bool:
        return self.stalled_outbox_id is not None


class OutboxRepair(models.Model):
    """An outbox row that could not be chained, as it was, before an operator replaced its payload.

    The chained event of a repaired row carries a stand-in payload naming this record and the
    SHA-256 of the original text kept here, so nothing is lost and the repair is itself evidence.
    Never updated, never deleted.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    outbox_id = models.BigIntegerField(unique=True)
    kind = models.CharField(max_length=48)
    original_actor = models.TextField(help_text="The actor column as the database held it (JSON text).")
    original_payload = models.TextField(help_text="The payload column as the database held it (JSON text).")
    original_sha256 = models.CharField(max_length=64)
    error = models.TextField()
    reason = models.TextField()
    repaired_by = models.CharField(max_length=200)
    repaired_at = models.DateTimeField()


class AuditEvent(models.Model):
    """One link of the chain. Never updated, never deleted (a database trigger refuses both).

    `body` is the canonical JSON of the event (docs/audit-chain.md) and is what the hash covers:
    hash = SHA-256(prev_hash || body). The other columns are projections of it for filtering;
    verification checks that they agree with the body.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)  # led by the composite indexes below
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=48)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16)
    actor_name = models.CharField(max_length=200)
    subject_account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+", db_index=False)
    outbox_id = models.BigIntegerField(null=True, blank=True,
                                       help_text="The outbox row it came from, chained once (flows have none).")
    body = models.TextField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    leaf_index = models.BigIntegerField(help_text="Its leaf in the organization's Merkle tree: its body is the entry.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "seq"], name="audit_event_unique_seq"),
            models.UniqueConstraint(fields=["organization", "leaf_index"], name="audit_event_unique_leaf"),
            models.UniqueConstraint(fields=["outbox_id"], condition=models.Q(outbox_id__isnull=False),
                                    name="audit_event_unique_outbox_row"),
        ]
        indexes = [
            models.Index(fields=["organization", "kind", "seq"]),
            models.Index(fields=["organization", "subject_account", "seq"]),
            models.Index(fields=["organization", "occurred_at"]),
        ]


class MerkleTile(models.Model):
    """256 consecutive node hashes of one level of an organization's Merkle tree (tile level t holds
    tree level 8t), written once, when full. Never updated, never deleted (docs/audit-chain.md)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)  # led by the unique constraint
    level = models.SmallIntegerField()
    index = models.BigIntegerField()
    hashes = models.BinaryField(help_text="256 SHA-256 hashes, 8,192 bytes.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "level", "index"], name="merkle_tile_unique")]


class SigningKey(models.Model):
    """A public key that has signed digests. Kept after rotation so old digests still verify."""

    fingerprint = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=16)
    public_key_pem = models.TextField()
    first_used_at = models.DateTimeField(auto_now_add=True)


class AuditDigest(models.Model):
    """A signed statement of an organization's chain head and (format 2) tree head at the end of a period.

    Digests chain too: each carries the previous digest's signature. One is written even for
    a period without events, so a missing period shows.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    period_start = models.DateTimeField(null=True)
    period_end = models.DateTimeField()
    first_seq = models.BigIntegerField(null=True)
    last_seq = models.BigIntegerField()
    event_count = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    tree_size = models.BigIntegerField(null=True, blank=True, help_text="Format 2: the signed tree head's size.")
    root_hash = models.CharField(max_length=64, blank=True, help_text="Format 2: the tree's root at tree_size.")
    algorithm = models.CharField(max_length=16)
    key_fingerprint = models.CharField(max_length=64)
    previous_signature = models.TextField(blank=True)
    signature = models.TextField()
    body = models.TextField(help_text="The canonical JSON that was signed.")

    class Meta:
        indexes = [models.Index(fields=["organization", "period_end"])]
