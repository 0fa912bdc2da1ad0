"""The outbox: every state change writes one row here in its own transaction; workers chain them."""
from django.db import models


class EventKind(models.TextChoices):
    ORGANIZATION_CREATED = "organization.created"
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
    TERMS_PUBLISHED = "terms.published"
    CONSENT_GRANTED = "consent.granted"
    CONSENT_REVOKED = "consent.revoked"
    FLOW_PERMITTED = "flow.permitted"
    FLOW_VIOLATION = "flow.violation"


class OutboxEntry(models.Model):
    """A change not yet chained. Written in the same transaction as the change it records."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=48, choices=EventKind.choices)
    occurred_at = models.DateTimeField()
    actor = models.JSONField()
    subject_account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+")
    payload = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["organization", "id"])]
        verbose_name_plural = "outbox entries"
