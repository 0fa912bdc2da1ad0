"""Console forms: filters, the two-step switch form, the throttled sign-in form, the organization's settings."""
import re
from datetime import datetime

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from accounts import services as accounts_services
from accounts.models import ApiToken, Group, OrgRole, Role, TokenScope
from accounts.selectors import account_by_user_name, groups_of
from audit.models import EventKind
from flows.models import Verdict
from governance import services as governance
from governance.models import Effect, Scope
from identity.policy import set_sign_in_policy

from .periods import PERIODS


class OverviewForm(forms.Form):
    days = forms.TypedChoiceField(choices=[(d, f"Last {d} days") for d in PERIODS], coerce=int, required=False)
    uses = forms.ChoiceField(choices=[("training", "AI training"), ("ai", "All AI uses"), ("all", "Every use")],
                             required=False, widget=forms.Select(attrs={"data-autosubmit": ""}))

    def values(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {"days": data.get("days") or 30, "uses": data.get("uses") or "training"}


def _choices(entries, blank="—"):
    return [("", blank)] + [(entry.key, entry.name) for entry in entries]


class RuleForm(forms.Form):
    """A switch at one scope for one target. Step one previews its impact; step two needs a reason."""

    scope = forms.ChoiceField(choices=Scope.choices, initial=Scope.ORGANIZATION)
    group = forms.ModelChoiceField(queryset=Group.objects.none(), required=False, empty_label="—")
    account = forms.CharField(required=False, max_length=254, help_text="The account's user name.")
    feature = forms.ChoiceField(required=False)
    data_category = forms.ChoiceField(required=False)
    purpose = forms.ChoiceField(required=False)
    effect = forms.ChoiceField(choices=Effect.choices, widget=forms.RadioSelect)
    locked = forms.BooleanField(required=False, help_text="Lower levels cannot override a locked switch.")
    expires_at = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                     help_text="Optional: the switch ends by itself then (a pilot). UTC.")
    reason = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Recorded in the audit trail with the change.")

    def __init__(self, *args, organization, names, require_reason: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization, self.names, self.require_reason = organization, names, require_reason
        self.fields["group"].queryset = groups_of(organization)
        self.fields["feature"].choices = _choices(names.features)
        self.fields["data_category"].choices = _choices(names.categories)
        self.fields["purpose"].choices = _choices(names.purposes)
        if require_reason:
            self.fields["reason"].required = True

    def clean_account(self):
        user_name = self.cleaned_data.get("account", "").strip()
        if not user_name:
            return None
        account = account_by_user_name(self.organization, user_name)
        if account is None:
            raise ValidationError("No account with this user name in this organization.")
        return account

    def clean_reason(self):
        reason = self.cleaned_data.get("reason", "").strip()
        if self.require_reason and not reason:
            raise ValidationError("Say why: the reason is recorded in the audit trail.")
        return reason

    def clean(self):
        data = super().clean()
        by_key = {"feature": {e.key: e for e in self.names.features},
                  "data_category": {e.key: e for e in self.names.categories},
                  "purpose": {e.key: e for e in self.names.purposes}}
        for name, entries in by_key.items():
            data[name] = entries.get(data.get(name) or "")
        scope = data.get("scope")
        if scope != Scope.GROUP:
            data["group"] = None
        if scope != Scope.ACCOUNT:
            data["account"] = None
        if any(name != "reason" for name in self.errors):
            return data
        try:
            governance.check_rule(organization=self.organization, **self.rule_arguments(data))
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                self.add_error(name if name in self.fields else None, messages)
        return data

    def rule_arguments(self, data=None) -> dict:
        """The arguments of `governance.services.set_rule` (and `simulate_rule`), without the reason."""
        data = data if data is not None else self.cleaned_data
        return {name: data.get(name) for name in ("scope", "group", "account", "feature", "data_category", "purpose",
                                                   "effect", "expires_at")} | {"locked": bool(data.get("locked"))}


class RemoveRuleForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Recorded in the audit trail with the change.")


class AccountFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200,
                        widget=forms.TextInput(attrs={"placeholder": "Name, user name, e-mail"}))
    group = forms.ModelChoiceField(queryset=Group.objects.none(), required=False, empty_label="All groups")
    active = forms.ChoiceField(choices=[("", "Active and inactive"), ("yes", "Active"), ("no", "Inactive")],
                               required=False)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = groups_of(organization)

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {"query": data.get("q", ""), "group": data.get("group"),
                "active": {"yes": True, "no": False}.get(data.get("active") or "")}


class AuditFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "All kinds")] + list(EventKind.choices), required=False)
    account = forms.CharField(required=False, max_length=254,
                              widget=forms.TextInput(attrs={"placeholder": "user name"}))
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {"kind": data.get("kind", ""), "account": data.get("account", "").strip(),
                "since": data.get("since"), "until": data.get("until"), "before_seq": data.get("before")}


class FlowFilterForm(forms.Form):
    verdict = forms.ChoiceField(choices=[("", "All verdicts")] + list(Verdict.choices), required=False)
    data_category = forms.ChoiceField(required=False, label="Data")
    purpose = forms.ChoiceField(required=False)
    destination = forms.CharField(required=False, max_length=200,
                                  widget=forms.TextInput(attrs={"placeholder": "e.g. vendor.model_training"}))
    account = forms.CharField(required=False, max_length=254,
                              widget=forms.TextInput(attrs={"placeholder": "user name"}))
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    cursor = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, names, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["data_category"].choices = _choices(names.categories, "All data")
        self.fields["purpose"].choices = _choices(names.purposes, "All purposes")

    def clean_cursor(self):
        value = self.cleaned_data.get("cursor") or ""
        if not value:
            return None
        try:
            instant, pk = value.rsplit("~", 1)
            return datetime.fromisoformat(instant), int(pk)
        except ValueError:
            raise ValidationError("Not a valid page.") from None


class TokenForm(forms.Form):
    """A new API or SCIM token: a name to tell it apart, and what it may call."""

    name = forms.CharField(max_length=100, help_text="Where it is used, e.g. “Okta provisioning” or “billing service”.")
    scope = forms.ChoiceField(choices=TokenScope.choices, widget=forms.RadioSelect, initial=TokenScope.SCIM,
                              help_text="SCIM tokens provision users and groups; API tokens call the REST API.")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if ApiToken.objects.filter(organization=self.organization, name=name, revoked_at__isnull=True).exists():
            raise ValidationError("A live token has this name already: revoke it first, or choose another name.")
        return name


class EmailDomainsForm(forms.Form):
    """The domains the organization's reports may be e-mailed to, one per line."""

    email_domains = forms.CharField(
        required=False, max_length=5000, label="E-mail domains", widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line, e.g. acme.example. Exactly these domains: a subdomain (eu.acme.example) is "
                  "not included unless it is listed too. With none, reports are mailed to nobody.")

    def clean_email_domains(self):
        domains = [domain for domain in re.split(r"[\s,;]+", self.cleaned_data["email_domains"]) if domain]
        try:
            return accounts_services.checked_email_domains(domains)
        except ValidationError as error:
            raise ValidationError(error.message_dict["email_domains"]) from None

    def apply(self, *, organization, actor) -> str:
        accounts_services.set_email_domains(organization=organization, actor=actor,
                                            domains=self.cleaned_data["email_domains"])
        return "Saved: reports are mailed only to " + (", ".join(organization.email_domains) or "nobody") + "."


class InviteForm(forms.Form):
    """Who to invite to the console, and with which role."""

    email = forms.EmailField(max_length=150, label="E-mail address",
                             help_text="The invitation's link is mailed here; it is good once, for seven days.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.AUDITOR)



class OrganizationNameForm(forms.Form):
    name = forms.CharField(max_length=200, label="Organization name")

    def apply(self, *, organization, actor) -> str:
        accounts_services.rename_organization(organization=organization, actor=actor, **self.cleaned_data)
        return f"Saved: the organization is now called {organization.name}."


class SignInPolicyForm(forms.Form):
    """How long a console session lasts, and whether only SSO sign-ins are let in."""

    session_minutes = forms.IntegerField(min_value=15, max_value=30 * 24 * 60, label="Session lifetime (minutes)",
                                         help_text="A session ends this long after sign-in: from 15 minutes to 30 days.")
    require_sso = forms.BooleanField(required=False, label="Require single sign-on",
                                     help_text="Only sessions signed in through the organization's identity "
                                               "provider are let in, except the break-glass owner's.")
    break_glass_user = forms.ModelChoiceField(queryset=None, required=False, label="Break-glass owner",
                                              help_text="May still sign in with a password and one-time code, "
                                                        "to repair a broken identity provider.")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["break_glass_user"].queryset = get_user_model().objects.filter(
            pk__in=OrgRole.objects.filter(organization=organization, role=Role.OWNER).values("user_id"))

    def apply(self, *, organization, actor) -> str:
        set_sign_in_policy(organization=organization, actor=actor, **self.cleaned_data)
        return "Saved the sign-in rules."
