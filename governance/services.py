"""Writes of the governance app. Each service is one transaction that also records the change."""
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.services import bump_policy_version
from audit import services as audit
from audit.actors import Actor
from audit.models import EventKind

from .models import ConsentAction, ConsentEvent, PolicyRule, PolicyRuleVersion, Scope, TermsCoverage, TermsVersion

RULE_MUTABLE_FIELDS = ("effect", "locked", "reason", "expires_at")


def rule_state(rule: PolicyRule) -> dict:
    """A rule as the audit trail records it: frozen keys and names, not foreign-key ids alone."""
    return {
        "id": rule.pk,
        "scope": rule.scope,
        "group": rule.group_id,
        "group_name": rule.group.display_name if rule.group_id else None,
        "account": rule.account.user_name if rule.account_id else None,
        "feature": rule.feature.key if rule.feature_id else None,
        "data_category": rule.data_category.key if rule.data_category_id else None,
        "purpose": rule.purpose.key if rule.purpose_id else None,
        "effect": rule.effect,
        "locked": rule.locked,
        "reason": rule.reason,
        "expires_at": rule.expires_at.isoformat() if rule.expires_at else None,
    }


def target_errors(feature, data_category, purpose) -> dict:
    """A target is a feature, or a data category and a purpose: never both, never neither."""
    if feature is not None and (data_category is not None or purpose is not None):
        return {"feature": "Give either a feature, or a data_category and a purpose, not both."}
    if feature is None and data_category is None and purpose is None:
        return {"feature": "Give either a feature, or a data_category and a purpose."}
    if feature is None:
        return {name: f"Required with {other}." for name, value, other in
                (("data_category", data_category, "purpose"), ("purpose", purpose, "data_category"))
                if value is None}
    return {}


def check_rule(*, organization, scope, group=None, account=None, feature=None, data_category=None, purpose=None,
               expires_at=None, now=None, **ignored):
    """Raise a ValidationError naming each field that makes this rule impossible."""
    now = now or timezone.now()
    errors = {}
    subject_ok = {Scope.ORGANIZATION: group is None and account is None,
                  Scope.GROUP: group is not None and account is None,
                  Scope.ACCOUNT: account is not None and group is None}
    if scope not in subject_ok:
        errors["scope"] = f"Must be one of: {', '.join(Scope.values)}."
    elif not subject_ok[scope]:
        errors["scope"] = {"organization": "An organization rule names neither a group nor an account.",
                           "group": "A group rule names a group (and no account).",
                           "account": "An account rule names an account (and no group)."}[scope]
    for name, obj in (("group", group), ("account", account)):
        if obj is not None and obj.organization_id != organization.pk:
            errors[name] = "Not found in this organization."
    errors.update(target_errors(feature, data_category, purpose))
    if expires_at is not None and expires_at <= now:
        errors["expires_at"] = "Must lie in the future."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def set_rule(*, organization, actor: Actor, scope: str, effect: str, locked: bool = False, reason: str = "",
             group=None, account=None, feature=None, data_category=None, purpose=None,
             expires_at: datetime | None = None) -> tuple[PolicyRule, bool]:
    """Set the switch for a target at a scope: create the rule, or change the live one.

    Returns the rule and whether it was created. One live rule per subject and target.
    """
    now = timezone.now()
    check_rule(organization=organization, scope=scope, group=group, account=account, feature=feature,
                data_category=data_category, purpose=purpose, expires_at=expires_at, now=now)
    existing = (PolicyRule.objects.select_for_update()
                .filter(organization=organization, scope=scope, group=group, account=account, feature=feature,
                        data_category=data_category, purpose=purpose, deleted_at__isnull=True).first())
    if existing is not None:
        return update_rule(rule=existing, actor=actor, effect=effect, locked=locked, reason=reason,
                           expires_at=expires_at), False
    rule = PolicyRule.objects.create(
        organization=organization, scope=scope, group=group, account=account, feature=feature,
        data_category=data_category, purpose=purpose, effect=effect, locked=locked, reason=reason,
        expires_at=expires_at, created_by=actor.as_dict(), created_at=now, updated_at=now)
    _open_version(rule, actor=actor, now=now)
    _record(rule, actor=actor, action="created", before=None, after=rule_state(rule), now=now)
    return rule, True


@transaction.atomic
def update_rule(*, rule: PolicyRule, actor: Actor, **changes) -> PolicyRule:
    """Change a rule's effect, lock, reason or expiry; the previous value stays in its history."""
    unknown = set(changes) - set(RULE_MUTABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "Cannot be changed; delete the rule and create another." for name in unknown})
    rule = PolicyRule.objects.select_for_update().get(pk=rule.pk, deleted_at__isnull=True)
    now = timezone.now()
    if changes.get("expires_at") is not None and changes["expires_at"] <= now:
        raise ValidationError({"expires_at": "Must lie in the future."})
    before = rule_state(rule)
    for name, value in changes.items():
        setattr(rule, name, value)
    if rule_state(rule) == before:
        return rule
    rule.updated_at = now
    rule.save(update_fields=[*changes, "updated_at"])
    _close_version(rule, now=now)
    _open_version(rule, actor=actor, now=now)
    _record(rule, actor=actor, action="changed", before=before, after=rule_state(rule), now=now)
    return rule


@transaction.atomic
def delete_rule(*, rule: PolicyRule, actor: Actor, reason: str = "") -> None:
    """Retire a rule. It stays in the history: an `at` before now still sees it."""
    rule = PolicyRule.objects.select_for_update().get(pk=rule.pk, deleted_at__isnull=True)
    now = timezone.now()
    rule.deleted_at = rule.updated_at = now
    rule.save(update_fields=["deleted_at", "updated_at"])
    _close_version(rule, now=now)
    _record(rule, actor=actor, action="deleted", before=rule_state(rule), after=None, now=now, reason=reason)


def _open_version(rule: PolicyRule, *, actor: Actor, now) -> None:
    PolicyRuleVersion.objects.create(rule=rule, organization_id=rule.organization_id, effect=rule.effect,
                                     locked=rule.locked, reason=rule.reason, expires_at=rule.expires_at,
                                     valid_from=now, actor=actor.as_dict())


def _close_version(rule: PolicyRule, *, now) -> None:
    PolicyRuleVersion.objects.filter(rule=rule, valid_to__isnull=True).update(valid_to=now)


def _record(rule: PolicyRule, *, actor: Actor, action: str, before, after, now, reason: str = "") -> None:
    version = bump_policy_version(rule.organization)
    audit.record(organization=rule.organization, kind=EventKind.POLICY_CHANGED, actor=actor, occurred_at=now,
                 subject_account=rule.account,
                 payload={"action": action, "rule": rule.pk, "before": before, "after": after,
                          "reason": reason or (after or before)["reason"], "policy_version": version})


@transaction.atomic
def publish_terms(*, organization, actor: Actor, version: str, effective_at: datetime, text_sha256: str,
                  covers=(), requires_reconsent: bool = False) -> TermsVersion:
    """Publish a version of the vendor's terms; `covers` lists the (DataCategory, Purpose) it newly covers."""
    if TermsVersion.objects.filter(organization=organization, version=version).exists():
        raise ValidationError({"version": ValidationError(f"Version '{version}' is published already.", code="unique")})
    covers = list(dict.fromkeys(covers))
    terms = TermsVersion.objects.create(organization=organization, version=version, effective_at=effective_at,
                                        text_sha256=text_sha256, requires_reconsent=requires_reconsent,
                                        published_by=actor.as_dict())
    TermsCoverage.objects.bulk_create([TermsCoverage(terms_version=terms, data_category=category, purpose=purpose)
                                       for category, purpose in covers])
    policy_version = bump_policy_version(organization)
    audit.record(organization=organization, kind=EventKind.TERMS_PUBLISHED, actor=actor, payload={
        "terms_version": terms.pk, "version": version, "effective_at": effective_at.isoformat(),
        "text_sha256": text_sha256, "requires_reconsent": requires_reconsent,
        "covers": [{"data_category": c.key, "purpose": p.key} for c, p in covers],
        "policy_version": policy_version})
    return terms


@transaction.atomic
def record_consent(*, organization, actor: Actor, account, action: str, mechanism: str, feature=None,
                   data_category=None, purpose=None, terms_version=None, evidence=None,
                   occurred_at: datetime | None = None) -> ConsentEvent:
    """Record a grant or a revocation. History is append-only; the current state is derived from it."""
    now = timezone.now()
    errors = target_errors(feature, data_category, purpose)
    if occurred_at is not None and occurred_at > now:
        errors["occurred_at"] = "Must not lie in the future."
    for name, obj in (("account", account), ("terms_version", terms_version)):
        if obj is not None and obj.organization_id != organization.pk:
            errors[name] = "Not found in this organization."
    if errors:
        raise ValidationError(errors)
    policy_version = bump_policy_version(organization, structure=False)
    consent = ConsentEvent.objects.create(
        organization=organization, account=account, feature=feature, data_category=data_category, purpose=purpose,
        action=action, mechanism=mechanism, terms_version=terms_version, evidence=evidence or {},
        occurred_at=occurred_at or now, recorded_at=now, recorded_by=actor.as_dict(), policy_version=policy_version)
    audit.record(
        organization=organization, actor=actor, subject_account=account, occurred_at=consent.occurred_at,
        kind=EventKind.CONSENT_GRANTED if action == ConsentAction.GRANT else EventKind.CONSENT_REVOKED,
        payload=_consent_payload(consent, policy_version))
    return consent


@transaction.atomic
def import_consents(*, organization, actor: Actor, consents: list[dict]) -> int:
    """Record many consent events at once (history imported from another system), each audited.

    Each item holds the arguments of `record_consent` but `organization` and `actor`.
    """
    now = timezone.now()
    rows = []
    for index, item in enumerate(consents):
        item = dict(item)
        errors = target_errors(item.get("feature"), item.get("data_category"), item.get("purpose"))
        occurred_at = item.pop("occurred_at", None) or now
        if occurred_at > now:
            errors["occurred_at"] = "Must not lie in the future."
        if item["account"].organization_id != organization.pk:
            errors["account"] = "Not found in this organization."
        if errors:
            raise ValidationError({f"consents[{index}].{name}": message for name, message in errors.items()})
        rows.append(ConsentEvent(organization=organization, occurred_at=occurred_at, recorded_at=now,
                                 recorded_by=actor.as_dict(), **item))
    policy_version = bump_policy_version(organization, structure=False)
    for row in rows:
        row.policy_version = policy_version
    created = ConsentEvent.objects.bulk_create(rows, batch_size=2000)
    for action, kind in ((ConsentAction.GRANT, EventKind.CONSENT_GRANTED), (ConsentAction.REVOKE,
                                                                           EventKind.CONSENT_REVOKED)):
        audit.record_many(organization=organization, kind=kind, actor=actor, occurred_at=None, entries=[
            (consent.account, _consent_payload(consent, policy_version)) for consent in created
            if consent.action == action])
    return len(created)


def _consent_payload(consent: ConsentEvent, policy_version: int) -> dict:
    return {"consent": consent.pk, "account": consent.account.user_name, "action": consent.action,
            "mechanism": consent.mechanism, "freely_given": consent.freely_given,
            "feature": consent.feature.key if consent.feature_id else None,
            "data_category": consent.data_category.key if consent.data_category_id else None,
            "purpose": consent.purpose.key if consent.purpose_id else None,
            "terms_version": consent.terms_version.version if consent.terms_version_id else None,
            "occurred_at": consent.occurred_at.isoformat(), "evidence": consent.evidence,
            "policy_version": policy_version}
