"""Reported flows and what the workers make of them: batches, judged flows, exposure rollups, violation webhooks.

The tables were created by the audit app and keep its names (`db_table`): moving the models here
moved no row.
"""
from django.db import models


class Verdict(models.TextChoices):
    PERMITTED = "permitted", "Permitted"
    VIOLATION = "violation", "Violation"


class FlowBatch(models.Model):
    """A batch of reported flows, stored whole in the request's transaction; workers judge it later.

    The database, not the broker, holds the pending work: a batch stays `received` until the
    transaction that judges it commits, and the sweep re-drives any batch left waiting.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        DONE = "done", "Done"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    flow_count = models.IntegerField()
    payload = models.BinaryField(help_text="The validated flows, JSON, accounts resolved to ids.")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.JSONField()
    counts = models.JSONField(default=dict, help_text="Flows by verdict, and duplicates ignored.")
    attempts = models.IntegerField(default=0)

    class Meta:
        db_table = "audit_flowbatch"
        indexes = [models.Index(fields=["status", "received_at"])]


class TelemetryFlow(models.Model):
    """An observed flow of people's data to a purpose and destination, with the verdict it got."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)  # led by the composite indexes below
    flow_id = models.CharField(max_length=200, help_text="The reporter's id: a flow is judged once.")
    batch = models.ForeignKey(FlowBatch, on_delete=models.PROTECT, related_name="flows")
    occurred_at = models.DateTimeField()
    data_category = models.CharField(max_length=100)
    purpose = models.CharField(max_length=100)
    destination = models.CharField(max_length=200)
    volume = models.BigIntegerField(default=0)
    account_count = models.IntegerField()
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    blocking_accounts = models.JSONField(default=list)
    reasons = models.JSONField(default=list)
    policy_version = models.BigIntegerField()
    audit_seq = models.BigIntegerField(help_text="The seq of its batch's event (format 1: of its own event).")
    recorded_at = models.DateTimeField()
    account_ids = models.TextField(blank=True, default="", help_text="Whose data, as ids: '12,15' (its leaf's field).")
    leaf_index = models.BigIntegerField(null=True, blank=True,
                                        help_text="Its leaf in the organization's Merkle tree (None: format 1, "
                                                  "when a flow was its own event).")

    class Meta:
        db_table = "audit_telemetryflow"
        constraints = [models.UniqueConstraint(fields=["organization", "flow_id"], name="flow_unique_id"),
                       models.UniqueConstraint(fields=["organization", "leaf_index"], name="flow_unique_leaf",
                                               condition=models.Q(leaf_index__isnull=False))]
        indexes = [models.Index(fields=["organization", "occurred_at"]),
                   models.Index(fields=["organization", "verdict", "occurred_at"])]


class FlowAccount(models.Model):
    """Whose data a flow carried; `blocking` marks the accounts without a valid basis."""

    flow = models.ForeignKey(TelemetryFlow, on_delete=models.PROTECT, related_name="account_links")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+",
                                db_index=False)  # led by the (account, flow) index
    blocking = models.BooleanField(default=False)

    class Meta:
        db_table = "audit_flowaccount"
        indexes = [models.Index(fields=["account", "flow"])]


class ExposureRollup(models.Model):
    """Per day x group x category x purpose x destination x verdict: flows, volume, distinct accounts.

    Kept up to date by the workers in the transaction that judges a batch, so charts never scan
    flows. `group_key` is the group's id, 0 for accounts in no group.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)  # led by the composite indexes below
    day = models.DateField()
    group_key = models.BigIntegerField()
    data_category = models.CharField(max_length=100)
    purpose = models.CharField(max_length=100)
    destination = models.CharField(max_length=200)
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    flows = models.BigIntegerField(default=0)
    volume = models.BigIntegerField(default=0)
    accounts = models.BigIntegerField(default=0, help_text="Distinct accounts that day.")

    class Meta:
        db_table = "audit_exposurerollup"
        constraints = [models.UniqueConstraint(
            fields=["organization", "day", "group_key", "data_category", "purpose", "destination", "verdict"],
            name="rollup_unique_cell")]


class ExposureSeen(models.Model):
    """Which account was exposed to which category x purpose x destination on which day: what makes
    the rollup's distinct-account counts exact. Only recent days are needed; older rows may be pruned."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)  # led by the composite indexes below
    day = models.DateField()
    account_id = models.BigIntegerField()
    data_category = models.CharField(max_length=100)
    purpose = models.CharField(max_length=100)
    destination = models.CharField(max_length=200)
    verdict = models.CharField(max_length=12, choices=Verdict.choices)

    class Meta:
        db_table = "audit_exposureseen"
        constraints = [models.UniqueConstraint(
            fields=["organization", "day", "account_id", "data_category", "purpose", "destination", "verdict"],
            name="exposure_seen_unique")]
        # the console reads the records inserted since it last looked (a worker inserts them in id order)
        indexes = [models.Index(fields=["organization", "id"])]


class WebhookEndpoint(models.Model):
    """Where an organization wants new violations POSTed, signed with HMAC-SHA256 of its secret."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128, help_text="Shared secret for the X-Signature-256 header.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "audit_webhookendpoint"


class WebhookDelivery(models.Model):
    """One POST owed to an endpoint; written in the transaction that found the violations."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    body = models.TextField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "audit_webhookdelivery"
        indexes = [models.Index(fields=["status", "created_at"])]
        verbose_name_plural = "webhook deliveries"
