"""A month in the life of an organization, for its compliance report.

Everything before and during last month happens on a test clock (django.utils.timezone.now
patched), so rules, accounts, consents and flows carry the instants they would have had; what
happens after the month happens now, and must not change last month's report.
"""
import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from accounts import services as accounts
from audit import services as audit
from audit.actors import Actor
from flows.batches import process_batch, receive_batch
from flows.validation import validate_flows
from governance import selectors as governance_selectors
from governance import services as governance
from governance.models import AIFeature, DataCategory, Purpose
from reports import periods

ADMIN = Actor("user", None, "dana@acme.example")
SERVICE = Actor("token", None, "meeting service")
TRAINING = ("content.transcript", "ai.training.first_party")


@contextmanager
def clock(start: datetime, step: timedelta = timedelta(milliseconds=1)):
    """Let time run from `start`, a millisecond per reading."""
    ticks = itertools.count()
    with mock.patch("django.utils.timezone.now", side_effect=lambda: start + step * next(ticks)):
        yield


def catalog(key=None, category=None, purpose=None):
    if key:
        return {"feature": AIFeature.objects.get(key=key, organization=None)}
    return {"data_category": DataCategory.objects.get(key=category, organization=None),
            "purpose": Purpose.objects.get(key=purpose, organization=None)}


def send_flows(org, *flows):
    """Report flows and judge them, as the API and a worker would."""
    compiled = governance_selectors.compiled_policy(org)
    validated = validate_flows(
        {"flows": [{"destination": "vendor.model_training", "volume": 10, **f} for f in flows]},
        catalog=compiled.snapshot.catalog,
        resolve_accounts=lambda names: governance_selectors.known_accounts(compiled, org, names))
    batch = receive_batch(organization=org, actor=SERVICE, flows=validated)
    process_batch(batch.pk)
    audit.drain_outbox(org.pk)


@dataclass
class Month:
    start: date
    end: date
    people: dict
    groups: dict
    rules: dict

    @property
    def start_at(self) -> datetime:
        return periods.midnight(self.start)

    @property
    def end_at(self) -> datetime:
        return periods.midnight(self.end)

    def day(self, n: int, hour: int = 10) -> datetime:
        return self.start_at + timedelta(days=n, hours=hour)


@pytest.fixture
def month(org) -> Month:
    """Last month at Acme: two groups, rules set before it and changed during it, consents of every
    kind, a terms version requiring re-consent in the middle of it, and six flows, four of them
    violations."""
    start, end = periods.last_full(periods.MONTH, timezone.now().date())
    m = Month(start, end, {}, {}, {})
    with clock(m.start_at - timedelta(days=5)):
        m.groups = {name: accounts.create_group(organization=org, actor=ADMIN, display_name=name)
                    for name in ("Sales", "Legal")}
        sales, legal = m.groups["Sales"], m.groups["Legal"]
        for name, groups in (("ada", [sales]), ("bob", [sales]), ("cy", [sales]), ("dee", [legal]),
                             ("eve", [sales, legal]), ("fay", []), ("gus", [sales])):
            m.people[name] = accounts.create_account(organization=org, actor=ADMIN, user_name=f"{name}@acme.example",
                                                     display_name=name.title(), groups=groups)
        m.rules["summary"], _ = governance.set_rule(organization=org, actor=ADMIN, scope="organization",
                                                   effect="allow", reason="Pilot approved", **catalog("meeting_summary"))
        m.rules["legal"], _ = governance.set_rule(organization=org, actor=ADMIN, scope="group", group=legal,
                                                 effect="deny", locked=True, reason="Privileged conversations",
                                                 **catalog("meeting_summary"))
        m.rules["training"], _ = governance.set_rule(organization=org, actor=ADMIN, scope="organization",
                                                    effect="allow", reason="Training with consent",
                                                    **catalog(category=TRAINING[0], purpose=TRAINING[1]))
        v1 = governance.publish_terms(organization=org, actor=ADMIN, version="v1", effective_at=m.start_at - timedelta(days=5),
                                      text_sha256="1" * 64)
        v2 = governance.publish_terms(organization=org, actor=ADMIN, version="v2", effective_at=m.day(10, 0),
                                      text_sha256="2" * 64, requires_reconsent=True,
                                      covers=[tuple(catalog(category=TRAINING[0], purpose=TRAINING[1]).values())])
    people = m.people
    with clock(m.day(2)):
        # gus leaves before the month ends: not governed at its end
        accounts.update_account(account=people["gus"], actor=ADMIN, active=False)
        m.rules["compose"], _ = governance.set_rule(organization=org, actor=ADMIN, scope="group", group=sales,
                                                   effect="allow", reason="Sales pilot", **catalog("chat_compose"))
        governance.update_rule(rule=m.rules["training"], actor=ADMIN, locked=True, reason="Works council agreed")
        pair = catalog(category=TRAINING[0], purpose=TRAINING[1])
        governance.import_consents(organization=org, actor=ADMIN, consents=[
            {"account": people["cy"], "action": "grant", "mechanism": "self_service", "terms_version": v1,
             "occurred_at": m.day(1), **pair},
            {"account": people["dee"], "action": "grant", "mechanism": "self_service", "terms_version": v1,
             "occurred_at": m.day(1), **pair},
            {"account": people["dee"], "action": "revoke", "mechanism": "self_service", "terms_version": v1,
             "occurred_at": m.day(2, 9), **pair},
        ])
    with clock(m.day(12)):
        governance.import_consents(organization=org, actor=ADMIN, consents=[
            {"account": people["ada"], "action": "grant", "mechanism": "self_service", "terms_version": v2,
             "occurred_at": m.day(11), **pair},
            {"account": people["bob"], "action": "grant", "mechanism": "admin_on_behalf", "terms_version": v2,
             "occurred_at": m.day(11), **pair},
            {"account": people["fay"], "action": "grant", "mechanism": "join_or_leave_prompt", "terms_version": v2,
             "occurred_at": m.day(11), **pair},
        ])
        training = {"data_category": TRAINING[0], "purpose": TRAINING[1]}
        send_flows(org,
                   {"flow_id": "f1", "accounts": ["ada@acme.example"], "occurred_at": m.day(11, 12).isoformat(),
                    **training},
                   {"flow_id": "f2", "accounts": ["eve@acme.example"], "occurred_at": m.day(11, 13).isoformat(),
                    **training},
                   {"flow_id": "f3", "accounts": ["cy@acme.example"], "occurred_at": m.day(11, 14).isoformat(),
                    **training},
                   {"flow_id": "f4", "accounts": ["ada@acme.example", "eve@acme.example"],
                    "occurred_at": m.day(11, 15).isoformat(), "volume": 100, **training},
                   {"flow_id": "f5", "accounts": ["dee@acme.example"], "occurred_at": m.day(11, 16).isoformat(),
                    "data_category": "telemetry.usage", "purpose": "service.provision", "destination": "vendor.service"},
                   {"flow_id": "f6", "accounts": ["fay@acme.example"], "occurred_at": m.day(11, 17).isoformat(),
                    "data_category": "content.chat", "purpose": "ai.training.third_party",
                    "destination": "thirdparty.llm_provider"})
    return m


@pytest.fixture
def after_the_month(org, month):
    """What happens once the month is over: none of it belongs in the month's report."""
    accounts.create_account(organization=org, actor=ADMIN, user_name="hal@acme.example", groups=[month.groups["Sales"]])
    governance.delete_rule(rule=month.rules["compose"], actor=ADMIN, reason="Pilot over")
    governance.record_consent(organization=org, actor=ADMIN, account=month.people["eve"], action="grant",
                              mechanism="self_service", **catalog(category=TRAINING[0], purpose=TRAINING[1]))
    send_flows(org, {"flow_id": "late", "accounts": ["cy@acme.example"], "occurred_at": timezone.now().isoformat(),
                     "data_category": "content.chat", "purpose": "ai.training.third_party"})
    audit.drain_outbox(org.pk)
