"""What an identity provider asserts about a person's AI use, and its effect on the policy.

The IdP asserts it through SCIM's AI-governance extension (two booleans). What it asserts (true,
false, or nothing) is kept as audit events of the account (`account.changed` with an
`idp_attributes` payload), recorded only when the asserted value changes, in the same transaction
as its effect on the policy:

- aiFeaturesOptOut true: an account-scope deny rule for every AI feature (reason "IdP attribute
  aiFeaturesOptOut"); leaving true (false, or removed): those rules are retired, their history kept.
- aiTrainingConsent true: a consent (mechanism idp_attribute) for first-party AI training on every
  customer-content category; leaving true: what the IdP granted is revoked. Only the IdP's own word
  is replaced: it never revokes a consent the person gave themself unless the IdP had granted it.

Reading the value back folds those events (chained ones, then those still in the outbox).
"""
import orjson
from django.db import transaction

from accounts.models import Account
from audit import services as audit
from audit.actors import Actor
from audit.models import EventKind, OutboxEntry
from audit.selectors import events_of

from . import services as governance
from .models import (AIFeature, ConsentAction, ConsentEvent, DataCategory, DataKind, Effect, Mechanism, PolicyRule,
                     Purpose, Scope)
from .selectors import catalog_entries

AI_FEATURES_OPT_OUT = "aiFeaturesOptOut"
AI_TRAINING_CONSENT = "aiTrainingConsent"
ATTRIBUTES = (AI_FEATURES_OPT_OUT, AI_TRAINING_CONSENT)
PAYLOAD_KEY = "idp_attributes"
AI_OPT_OUT_REASON = "IdP attribute aiFeaturesOptOut"
TRAINING_PURPOSE = "ai.training.first_party"


def blank() -> dict:
    return {name: None for name in ATTRIBUTES}


def asserted(organization, account_ids) -> dict[int, dict]:
    """What the IdP last asserted for each account: {account_id: {attribute: True/False/None}}."""
    account_ids = list(account_ids)
    states = {pk: blank() for pk in account_ids}
    if not account_ids:
        return states
    # The outbox first: a row chained between the two reads then shows in both, never in neither.
    pending = list(OutboxEntry.objects.filter(organization=organization, kind=EventKind.ACCOUNT_CHANGED,
                                              subject_account_id__in=account_ids, payload__has_key=PAYLOAD_KEY)
                   .order_by("id").values_list("id", "subject_account_id", "payload"))
    chained = (events_of(organization).filter(kind=EventKind.ACCOUNT_CHANGED, subject_account_id__in=account_ids,
                                              body__contains=f'"{PAYLOAD_KEY}"')
               .order_by("seq").values_list("outbox_id", "subject_account_id", "body"))
    seen = set()
    for outbox_id, account_id, body in chained:
        seen.add(outbox_id)
        states[account_id].update(orjson.loads(body)["payload"].get(PAYLOAD_KEY, {}))
    for outbox_id, account_id, payload in pending:
        if outbox_id not in seen:
            states[account_id].update(payload.get(PAYLOAD_KEY, {}))
    return states


def changes(before: dict, after: dict) -> dict:
    return {name: after[name] for name in ATTRIBUTES if after.get(name) != before.get(name)}


def apply(*, account: Account, actor: Actor, before: dict, after: dict, schema: str) -> dict:
    """Record what changed in the IdP's assertions and apply its effect; returns the changes.

    `schema`: the URN the IdP asserted them under, kept in the event.
    """
    changed = changes(before, after)
    if changed:
        _apply_changes(account=account, actor=actor, changes=changed, schema=schema)
    return changed


@transaction.atomic
def _apply_changes(*, account: Account, actor: Actor, changes: dict, schema: str) -> None:
    audit.record(organization=account.organization, kind=EventKind.ACCOUNT_CHANGED, actor=actor,
                 subject_account=account, payload={"schema": schema, PAYLOAD_KEY: changes})
    if AI_FEATURES_OPT_OUT in changes:
        apply_ai_opt_out(account=account, actor=actor, opt_out=bool(changes[AI_FEATURES_OPT_OUT]))
    if AI_TRAINING_CONSENT in changes:
        apply_ai_training_consent(account=account, actor=actor, consent=bool(changes[AI_TRAINING_CONSENT]))


@transaction.atomic
def apply_ai_opt_out(*, account: Account, actor: Actor, opt_out: bool) -> None:
    """true: deny every AI feature for the account (account rules); false: retire those rules."""
    organization = account.organization
    if opt_out:
        for feature in catalog_entries(AIFeature, organization):
            governance.set_rule(organization=organization, actor=actor, scope=Scope.ACCOUNT, account=account,
                                feature=feature, effect=Effect.DENY, reason=AI_OPT_OUT_REASON)
        return
    rules = PolicyRule.objects.filter(organization=organization, scope=Scope.ACCOUNT, account=account,
                                      reason=AI_OPT_OUT_REASON, deleted_at__isnull=True)
    for rule in rules:
        governance.delete_rule(rule=rule, actor=actor, reason=f"{AI_OPT_OUT_REASON} no longer true")


@transaction.atomic
def apply_ai_training_consent(*, account: Account, actor: Actor, consent: bool) -> int:
    """Grant (or withdraw what the IdP granted of) first-party AI training consent on customer content.

    Per category, a grant is recorded when the IdP's last consent event is not a grant, a
    revocation only when it is one. Returns how many consent events were recorded.
    """
    organization = account.organization
    purpose = catalog_entries(Purpose, organization).filter(key=TRAINING_PURPOSE).first()
    if purpose is None:
        return 0
    last_word = dict(ConsentEvent.objects.filter(account=account, purpose=purpose, mechanism=Mechanism.IDP_ATTRIBUTE)
                     .order_by("occurred_at", "id").values_list("data_category_id", "action"))
    recorded = 0
    for category in catalog_entries(DataCategory, organization).filter(kind=DataKind.CUSTOMER_CONTENT):
        said = last_word.get(category.pk)
        if consent and said != ConsentAction.GRANT:
            action = ConsentAction.GRANT
        elif not consent and said == ConsentAction.GRANT:
            action = ConsentAction.REVOKE
        else:
            continue
        governance.record_consent(organization=organization, actor=actor, account=account, action=action,
                                  mechanism=Mechanism.IDP_ATTRIBUTE, data_category=category, purpose=purpose,
                                  evidence={"source": "scim", "attribute": AI_TRAINING_CONSENT, "value": consent})
        recorded += 1
    return recorded
