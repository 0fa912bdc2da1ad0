"""Organizations (tenants), the people they govern, and who may use the console and API."""
import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import DomainNameValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone


MAX_EMAIL_DOMAINS = 50


def email_domain(value: str) -> str:
    """A domain as the organization keeps and compares it: lower case, no trailing dot, an international
    name in its ASCII (punycode) form; a ValidationError if it is not a domain name."""
    domain = value.strip().rstrip(".").lower() if isinstance(value, str) else ""
    try:
        DomainNameValidator()(domain)
        return domain.encode("idna").decode("ascii")
    except (ValidationError, UnicodeError):
        raise ValidationError(f"Not a domain name: {value!r}.") from None


# A deleted account or group (accounts.services.delete_account, delete_group) keeps its row and its
# history, renamed with this mark and its id so that the IdP may create the same name again. SCIM no
# longer sees it (RFC 7644 §3.6: 404 afterwards, omitted from queries); the console still does.
TOMBSTONE_MARK = "#deleted-"


def tombstone_name(name: str, pk: int, max_length: int) -> str:
    suffix = f"{TOMBSTONE_MARK}{pk}"
    return name[: max_length - len(suffix)] + suffix


class Organization(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    # Where its compliance reports may be e-mailed: exactly these domains, not their subdomains (a
    # subdomain may be delegated to a vendor). Set by owners (accounts.services.set_email_domains).
    email_domains = models.JSONField(default=list, blank=True)
    # Incremented by every rule, membership, consent or terms change: a logged decision
    # names the version it saw, so it can be re-evaluated against exactly that state.
    policy_version = models.BigIntegerField(default=0)
    # Incremented with it by every such change but a consent event: while it stands still, a
    # compiled policy catches up by taking in the newer consent events alone.
    structure_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.slug

    def mails_to(self, address: str) -> bool:
        """Whether reports may be e-mailed to `address`: its domain is exactly one of the organization's."""
        local, at, domain = address.rpartition("@")
        try:
            return bool(local) and email_domain(domain) in self.email_domains
        except ValidationError:
            return False


class Group(models.Model):
    """An IdP group or department; policy is set per group."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="groups")
    display_name = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "display_name"], name="group_unique_name"),
            models.UniqueConstraint(fields=["organization", "external_id"], condition=Q(external_id__isnull=False),
                                    name="group_unique_external_id"),
        ]

    def __str__(self):
        return self.display_name


class Account(models.Model):
    """A governed person. Deactivation never deletes: the history stays attached."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="accounts")
    user_name = models.CharField(max_length=254)
    external_id = models.CharField(max_length=200, null=True, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    active = models.BooleanField(default=True)
    groups = models.ManyToManyField(Group, through="AccountGroup", related_name="accounts")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user_name"], name="account_unique_user_name"),
            models.UniqueConstraint(fields=["organization", "external_id"], condition=Q(external_id__isnull=False),
                                    name="account_unique_external_id"),
        ]
        indexes = [
            models.Index(fields=["organization", "active"]),
            # SCIM matches userName regardless of case (IdPs look users up before creating them)
            models.Index("organization", Upper("user_name"), name="account_user_name_ci"),
        ]

    def __str__(self):
        return self.user_name


class AccountGroup(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE)
    group = models.ForeignKey(Group, on_delete=models.CASCADE)
    # Since when the account is in the group. The services give every row of one change the same
    # instant, so an account provisioned with its groups has one start for all of them.
    added_at = models.DateTimeField(default=timezone.now)
    # The organization's policy version the adding transaction made (see ConsentEvent.policy_version)
    policy_version = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "group"], name="account_group_unique")]
        indexes = [models.Index(fields=["policy_version"], name="account_group_policy_version")]


class PastMembership(models.Model):
    """A group membership that ended: with today's AccountGroup rows (and their added_at), the
    groups an account was in at any past instant, for decisions and reports as of then."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+", db_index=False)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    policy_version = models.BigIntegerField(null=True, blank=True, editable=False)  # of the ending transaction

    class Meta:
        indexes = [models.Index(fields=["organization", "account"]),
                   models.Index(fields=["organization", "policy_version"], name="past_membership_policy_version")]


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    AUDITOR = "auditor", "Auditor"


WRITER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class OrgRole(models.Model):
    """A console user's role in one organization (owner, admin or auditor). Not to be confused with a
    governed person's group membership (`AccountGroup`)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="org_roles")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="org_roles")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="org_role_unique")]

    @property
    def can_write(self) -> bool:
        return self.role in WRITER_ROLES


class TokenScope(models.TextChoices):
    API = "api", "REST API"
    SCIM = "scim", "SCIM provisioning"


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 is stored: the token itself is shown once, at creation.

    A token is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    """

    PREFIX = "agc_"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=TokenScope.choices)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], condition=Q(revoked_at__isnull=True),
                                               name="api_token_unique_live_name")]

    @staticmethod
    def digest_of(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    def __str__(self):
        return f"{self.organization.slug}/{self.name}"
