"""Every write of the API, tried as an outsider would: each field of a good request replaced by
hostile values, and hostile whole bodies. None may answer 5xx; a refusal is problem+json and
changes nothing; and after all of it the organization's next good change is in the chain."""
from datetime import timedelta

import json

import pytest
from django.utils import timezone

from accounts.models import Account, AccountGroup, ApiToken, Group
from audit import services as audit
from audit.models import AuditEvent, ChainHead, OutboxEntry
from audit.selectors import verify_chain
from flows.models import FlowBatch, WebhookEndpoint
from governance.models import ConsentEvent, PolicyRule, TermsVersion
from reports.models import Report, ReportSchedule

from ..factories import AccountFactory, GroupFactory

pytestmark = pytest.mark.django_db


def deep(levels: int):
    value = 1
    for _ in range(levels):
        value = {"a": value}
    return value


HOSTILE_VALUES = {
    "deep-object": deep(300),
    "deep-list": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    "long-list": list(range(20_000)),
    "nul": "a\u0000b",
    "nul-key": {"a\u0000": 1},
    "huge-string": "x" * 300_000,
    "huge-int": 2**70,
    "negative": -1,
    "float": 14.5,
    "string-bool": "false",
    "bool": True,
    "null": None,
    "empty-list": [],
    "empty-object": {},
    "empty-string": "",
    "formula": '=HYPERLINK("http://evil.example","x")',
    "markup": '<a href="https://evil.example">x</a>',
    "internal-url": "http://169.254.169.254/latest/meta-data/",
    "duplicates": [1, 1],
}


@pytest.fixture
def world(org, sales):
    org.email_domains = ["acme.example"]  # where report schedules may mail
    org.save(update_fields=["email_domains"])
    ada = AccountFactory(organization=org, user_name="ada@acme.example", groups=[sales])
    other = GroupFactory(organization=org, display_name="Other")
    return {"sales": sales, "other": other, "ada": ada}


def good_requests(world) -> list[tuple[str, str, dict]]:
    now = timezone.now()
    ada, sales = world["ada"], world["sales"]
    rule = {"scope": "organization", "feature": "meeting_summary", "effect": "deny", "locked": False,
            "reason": "legal hold"}
    return [
        ("post", "/api/v1/groups/", {"display_name": "Legal", "external_id": "legal"}),
        ("patch", f"/api/v1/groups/{sales.pk}/", {"display_name": "Sales EMEA"}),
        ("post", "/api/v1/accounts/", {"user_name": "bob@acme.example", "email": "bob@acme.example",
                                       "display_name": "Bob", "external_id": "bob", "active": True,
                                       "groups": [sales.pk]}),
        ("patch", f"/api/v1/accounts/{ada.pk}/", {"display_name": "Ada L.", "groups": [world["other"].pk],
                                                  "active": True}),
        ("post", "/api/v1/policy-rules/", rule),
        ("post", "/api/v1/policy-rules/simulate/", rule),
        ("post", "/api/v1/terms-versions/", {"version": "2027-01", "effective_at": (now + timedelta(days=3)).isoformat(),
                                             "text_sha256": "a" * 64, "requires_reconsent": True,
                                             "covers": [{"data_category": "content.audio",
                                                         "purpose": "ai.training.first_party"}]}),
        ("post", "/api/v1/consents/", {"account": ada.user_name, "data_category": "content.audio",
                                       "purpose": "ai.training.first_party", "action": "grant",
                                       "mechanism": "self_service", "evidence": {"source": "dialog"}}),
        ("post", "/api/v1/decisions/", {"account": ada.user_name, "data_category": "telemetry.usage",
                                        "purpose": "marketing"}),
        ("post", "/api/v1/flows/", {"flows": [{"flow_id": "f-1", "accounts": [ada.user_name],
                                               "data_category": "telemetry.usage", "purpose": "service.provision",
                                               "destination": "vendor.service", "occurred_at": now.isoformat(),
                                               "volume": 3}]}),
        ("post", "/api/v1/webhooks/", {"url": "https://hooks.acme.example/governance", "secret": "s" * 32}),
        ("post", "/api/v1/report-schedules/", {"name": "Monthly", "cadence": "monthly",
                                               "recipients": ["dpo@acme.example"]}),
        ("post", "/api/v1/reports/", {"period_start": (now - timedelta(days=7)).date().isoformat(),
                                      "period_end": now.date().isoformat(), "formats": ["json"]}),
    ]


def state() -> tuple:
    """What a refused request must leave as it was."""
    return tuple(model.objects.count() for model in (
        Group, Account, AccountGroup, PolicyRule, TermsVersion, ConsentEvent, FlowBatch, WebhookEndpoint,
        ReportSchedule, Report, ApiToken, OutboxEntry, AuditEvent)) + (
        tuple(Group.objects.order_by("pk").values_list("display_name", flat=True)),
        tuple(Account.objects.order_by("pk").values_list("display_name", "active", flat=False)))


def send(api, method, path, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()  # orjson stops at 254 levels
    return getattr(api, method)(path, data, content_type="application/json")


def check(response, before, what):
    assert response.status_code < 500, (what, response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json", (what, response.content[:200])
        assert state() == before, f"{what}: refused with {response.status_code} but changed something"


def test_hostile_values_in_every_field_of_every_write(api, org, world, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.acme.example"]
    tried = 0
    for method, path, good in good_requests(world):
        for field in good:
            for name, value in HOSTILE_VALUES.items():
                before = state()
                response = send(api, method, path, {**good, field: value})
                check(response, before, f"{method.upper()} {path} {field}={name}")
                tried += 1
    assert tried > 700


@pytest.mark.parametrize("body", [
    b"", b"null", b"[]", b'"x"', b"1", b"{", b"\xff\xfe", b'{"a": 1, "a": 2}', b"[" * 2000 + b"]" * 2000,
    b'{"x": ' * 990 + b"1" + b"}" * 990, b'{"display_name": "\\ud800"}', b'{"display_name": NaN}',
    b'{"display_name": 1e400}',
], ids=["empty", "null", "list", "string", "number", "truncated", "not-utf8", "duplicate-keys", "deep-list",
        "deep-object", "lone-surrogate", "nan", "infinite"])
def test_hostile_whole_bodies_on_every_write(api, org, world, body, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.acme.example"]
    for method, path, _ in good_requests(world):
        before = state()
        check(send(api, method, path, body), before, f"{method.upper()} {path} {body[:20]!r}")


def test_after_every_refusal_the_next_good_change_is_chained(api, org, world, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.acme.example"]
    for method, path, good in good_requests(world):
        for name, value in HOSTILE_VALUES.items():
            send(api, method, path, {**{key: value for key in good}})
    response = send(api, "post", "/api/v1/policy-rules/", {"scope": "organization", "feature": "transcription",
                                                          "effect": "deny", "reason": "after the storm"})
    assert response.status_code == 201, response.content
    audit.drain_outbox(org.pk)
    assert not OutboxEntry.objects.filter(organization=org).exists()
    assert ChainHead.objects.get(organization=org).stalled_outbox_id is None
    last = AuditEvent.objects.filter(organization=org).order_by("-seq").first()
    assert last.kind == "policy.changed" and "after the storm" in last.body
    assert verify_chain(org).valid
