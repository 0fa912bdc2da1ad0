"""The catalog (what data, for what purpose, by which AI feature), the switches, and the vendor's terms."""
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce

from .consent import NOT_FREELY_GIVEN


class DataKind(models.TextChoices):
    CUSTOMER_CONTENT = "customer_content", "Customer content"
    SERVICE_GENERATED = "service_generated", "Service-generated data"


class CatalogEntry(models.Model):
    """Global entries have no organization; an organization may add its own keys."""

    organization = models.ForeignKey("accounts.Organization", null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="+")
    key = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    fides_key = models.CharField(max_length=200, help_text="The nearest fideslang taxonomy key.")

    class Meta:
        abstract = True

    def __str__(self):
        return self.key


def _catalog_constraints(prefix):
    return [
        models.UniqueConstraint(fields=["key"], condition=Q(organization__isnull=True), name=f"{prefix}_global_key"),
        models.UniqueConstraint(fields=["organization", "key"], name=f"{prefix}_org_key"),
    ]


class DataCategory(CatalogEntry):
    kind = models.CharField(max_length=24, choices=DataKind.choices)

    class Meta:
        constraints = _catalog_constraints("datacategory")
        verbose_name_plural = "data categories"


class Purpose(CatalogEntry):
    # The data kinds for which this purpose needs each person's own consent, not only the admin's switch.
    requires_individual_consent_for = models.JSONField(default=list, blank=True)
    is_ai = models.BooleanField(default=False, help_text="An AI purpose: customer content is denied by default.")

    class Meta:
        constraints = _catalog_constraints("purpose")


class AIFeature(CatalogEntry):
    data_categories = models.ManyToManyField(DataCategory, related_name="features")
    purposes = models.ManyToManyField(Purpose, related_name="features")

    class Meta:
        constraints = _catalog_constraints("aifeature")
        verbose_name = "AI feature"


class Scope(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    GROUP = "group", "Group"
    ACCOUNT = "account", "Account"


class Effect(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"


class PolicyRule(models.Model):
    """A switch: at one scope, for one target (a feature, or a category x purpose), allow or deny.

    Scope and target are fixed at creation; effect, lock, reason and expiry change through
    versions, so the value of any switch at any past instant can be recomputed.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="policy_rules")
    scope = models.CharField(max_length=16, choices=Scope.choices)
    group = models.ForeignKey("accounts.Group", null=True, blank=True, on_delete=models.PROTECT, related_name="rules")
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="rules")
    feature = models.ForeignKey(AIFeature, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    data_category = models.ForeignKey(DataCategory, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+")
    purpose = models.ForeignKey(Purpose, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Current values (the latest version), for listing without a join.
    effect = models.CharField(max_length=8, choices=Effect.choices)
    locked = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.JSONField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(scope="organization", group__isnull=True, account__isnull=True)
                           | Q(scope="group", group__isnull=False, account__isnull=True)
                           | Q(scope="account", group__isnull=True, account__isnull=False)),
                name="policyrule_scope_subject"),
            models.CheckConstraint(
                condition=(Q(feature__isnull=False, data_category__isnull=True, purpose__isnull=True)
                           | Q(feature__isnull=True, data_category__isnull=False, purpose__isnull=False)),
                name="policyrule_target"),
            # At most one live rule per subject and target.
            models.UniqueConstraint(
                "organization", "scope", Coalesce("group", 0), Coalesce("account", 0), Coalesce("feature", 0),
                Coalesce("data_category", 0), Coalesce("purpose", 0),
                condition=Q(deleted_at__isnull=True), name="policyrule_one_live_per_target"),
        ]
        indexes = [models.Index(fields=["organization", "deleted_at"])]


class PolicyRuleVersion(models.Model):
    """What a rule said during [valid_from, valid_to). Append-only; valid_to closes a version."""

    rule = models.ForeignKey(PolicyRule, on_delete=models.PROTECT, related_name="versions")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    effect = models.CharField(max_length=8, choices=Effect.choices)
    locked = models.BooleanField()
    reason = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    actor = models.JSONField()

    class Meta:
        indexes = [models.Index(fields=["organization", "valid_from"])]
        ordering = ["valid_from", "id"]


class TermsVersion(models.Model):
    """A version of the governed vendor's terms."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="terms_versions")
    version = models.CharField(max_length=64)
    effective_at = models.DateTimeField()
    text_sha256 = models.CharField(max_length=64)
    requires_reconsent = models.BooleanField(default=False)
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "version"], name="terms_unique_version")]
        ordering = ["effective_at"]


class TermsCoverage(models.Model):
    """A category x purpose a terms version newly covers."""

    terms_version = models.ForeignKey(TermsVersion, on_delete=models.CASCADE, related_name="covers")
    data_category = models.ForeignKey(DataCategory, on_delete=models.PROTECT, related_name="+")
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["terms_version", "data_category", "purpose"],
                                               name="terms_coverage_unique")]


class ConsentAction(models.TextChoices):
    GRANT = "grant", "Grant"
    REVOKE = "revoke", "Revoke"


class Mechanism(models.TextChoices):
    SELF_SERVICE = "self_service", "The person themself"
    ADMIN_ON_BEHALF = "admin_on_behalf", "An admin on their behalf"
    JOIN_OR_LEAVE_PROMPT = "join_or_leave_prompt", "A join-or-leave prompt"
    IDP_ATTRIBUTE = "idp_attribute", "An identity-provider attribute"
    IMPORT = "import", "Imported history"




class ConsentEvent(models.Model):
    """One grant or revocation by (or for) one account, for a category x purpose or a feature.

    Append-only: the current state is derived from the history, never stored.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="consent_events")
    feature = models.ForeignKey(AIFeature, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    data_category = models.ForeignKey(DataCategory, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+")
    purpose = models.ForeignKey(Purpose, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=8, choices=ConsentAction.choices)
    mechanism = models.CharField(max_length=24, choices=Mechanism.choices)
    terms_version = models.ForeignKey(TermsVersion, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="consents")
    evidence = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    recorded_by = models.JSONField()
    # The organization's policy version this event's transaction made (null: recorded before it was
    # kept). A compiled policy at version V catches up to W with the events of versions V+1..W.
    policy_version = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=(Q(feature__isnull=False, data_category__isnull=True, purpose__isnull=True)
                       | Q(feature__isnull=True, data_category__isnull=False, purpose__isnull=False)),
            name="consent_target")]
        indexes = [models.Index(fields=["organization", "id"]), models.Index(fields=["account", "occurred_at"]),
                   models.Index(fields=["organization", "policy_version"], name="consent_org_policy_version")]

    @property
    def freely_given(self) -> bool:
        return self.mechanism not in NOT_FREELY_GIVEN
