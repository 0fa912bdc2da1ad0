"""Who may sign in to an organization's console, and how.

Each organization has at most one identity provider (OIDC or SAML) and its sign-in rules. People
who sign in through it are linked by (issuer, subject), never by e-mail address: an IdP can only
ever sign in people it created here. Invitations and seen assertions are kept as rows so that a
link or an ID token is good once, across every process.
"""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import ApiToken, Role


class Protocol(models.TextChoices):
    OIDC = "oidc", "OpenID Connect"
    SAML = "saml", "SAML 2.0"


class SignInPolicy(models.Model):
    """An organization's sign-in rules. Absent means the defaults: passwords allowed, 8-hour sessions."""

    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE, primary_key=True,
                                        related_name="sign_in_policy")
    # When set, the console refuses every session not signed in through the organization's IdP,
    # except the break-glass owner's (a password and TOTP), so that a broken IdP can be repaired.
    require_sso = models.BooleanField(default=False)
    break_glass_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="+")
    session_minutes = models.PositiveIntegerField(default=8 * 60, validators=[MinValueValidator(15),
                                                                               MaxValueValidator(30 * 24 * 60)])
    updated_at = models.DateTimeField(auto_now=True)


class IdentityProvider(models.Model):
    """The organization's IdP. The OIDC client secret is stored encrypted (identity.secrets) and never
    shown again; SAML needs no secret, only the IdP's signing certificate."""

    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE,
                                        related_name="identity_provider")
    protocol = models.CharField(max_length=8, choices=Protocol.choices)
    enabled = models.BooleanField(default=True)
    # OpenID Connect: the issuer, from which the discovery document is fetched.
    issuer = models.URLField(max_length=500, blank=True)
    client_id = models.CharField(max_length=255, blank=True)
    client_secret = models.TextField(blank=True, help_text="Encrypted; see identity.secrets.")
    # SAML 2.0: the IdP's entity id, single sign-on URL (HTTP-Redirect binding) and signing certificate.
    saml_entity_id = models.CharField(max_length=500, blank=True)
    saml_sso_url = models.URLField(max_length=500, blank=True)
    saml_certificate = models.TextField(blank=True, help_text="PEM, the IdP's signing certificate.")
    # The claim (OIDC) or attribute (SAML) that lists the person's groups, and which group grants
    # which role: {"GovConsole-Owners": "owner", ...}. The highest role among them wins.
    groups_claim = models.CharField(max_length=128, default="groups")
    role_mapping = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.get_protocol_display()} for {self.organization_id}"


class ExternalIdentity(models.Model):
    """A console user as their organization's IdP knows them."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    email = models.EmailField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "issuer", "subject"],
                                               name="external_identity_unique")]


class SeenAssertion(models.Model):
    """An OIDC nonce or SAML assertion id already used to sign in: presenting it again is a replay."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+",
                                     db_index=False)
    protocol = models.CharField(max_length=8, choices=Protocol.choices)
    identifier = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "protocol", "identifier"],
                                               name="seen_assertion_unique")]


class Invitation(models.Model):
    """A single-use, expiring invitation to an organization's console with a role. Only the SHA-256
    of the link's token is stored."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices)
    token_digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "email"])]

    digest_of = staticmethod(ApiToken.digest_of)  # the same SHA-256 as API tokens'
