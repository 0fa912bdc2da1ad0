"""Every route, every method: another organization's token finds nothing of ours, auditors cannot
write, anonymous callers are refused. A route missing from ROUTES fails the first test, so no
view can be added without being walked."""
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account, Group
from audit import flows, services as audit
from audit.actors import SYSTEM
from audit.models import AuditEvent, FlowBatch, TelemetryFlow, WebhookEndpoint
from governance import services as governance
from governance.models import ConsentEvent, DataCategory, PolicyRule, Purpose, TermsVersion
from governance.selectors import compiled_policy
from reports import services as report_services
from reports.models import Report, ReportSchedule

from .conftest import session_client, token_client
from .factories import AccountFactory, GroupFactory

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")
ALL_METHODS = ("get",) + WRITE_METHODS

# route name -> (path for the objects of `mine`, the methods the route serves)
ROUTES = {
    "v1:catalog": (lambda o: "/api/v1/catalog/", ("get",)),
    "v1:decisions": (lambda o: "/api/v1/decisions/", ("post",)),
    "v1:exposure": (lambda o: "/api/v1/exposure/", ("get",)),
    "v1:group-list": (lambda o: "/api/v1/groups/", ("get", "post")),
    "v1:group-detail": (lambda o: f"/api/v1/groups/{o['group'].pk}/", ("get", "put", "patch")),
    "v1:account-list": (lambda o: "/api/v1/accounts/", ("get", "post")),
    "v1:account-detail": (lambda o: f"/api/v1/accounts/{o['account'].pk}/", ("get", "put", "patch")),
    "v1:account-effective-policy": (lambda o: f"/api/v1/accounts/{o['account'].pk}/effective-policy/", ("get",)),
    "v1:policyrule-list": (lambda o: "/api/v1/policy-rules/", ("get", "post")),
    "v1:policyrule-detail": (lambda o: f"/api/v1/policy-rules/{o['rule'].pk}/", ("get", "patch", "delete")),
    "v1:policyrule-simulate": (lambda o: "/api/v1/policy-rules/simulate/", ("post",)),
    "v1:auditevent-list": (lambda o: "/api/v1/audit-events/", ("get",)),
    "v1:auditevent-detail": (lambda o: f"/api/v1/audit-events/{o['event'].seq}/", ("get",)),
    "v1:auditevent-verify": (lambda o: "/api/v1/audit-events/verify/", ("get",)),
    "v1:termsversion-list": (lambda o: "/api/v1/terms-versions/", ("get", "post")),
    "v1:termsversion-detail": (lambda o: f"/api/v1/terms-versions/{o['terms'].pk}/", ("get",)),
    "v1:consent-list": (lambda o: "/api/v1/consents/", ("get", "post")),
    "v1:consent-detail": (lambda o: f"/api/v1/consents/{o['consent'].pk}/", ("get",)),
    "v1:flow-list": (lambda o: "/api/v1/flows/", ("get", "post")),
    "v1:flowbatch-list": (lambda o: "/api/v1/flow-batches/", ("get",)),
    "v1:flowbatch-detail": (lambda o: f"/api/v1/flow-batches/{o['batch'].pk}/", ("get",)),
    "v1:webhook-list": (lambda o: "/api/v1/webhooks/", ("get", "post")),
    "v1:webhook-detail": (lambda o: f"/api/v1/webhooks/{o['webhook'].pk}/", ("get", "patch", "delete")),
    "v1:report-list": (lambda o: "/api/v1/reports/", ("get", "post")),
    "v1:report-detail": (lambda o: f"/api/v1/reports/{o['report'].pk}/", ("get",)),
    "v1:report-download": (lambda o: f"/api/v1/reports/{o['report'].pk}/download/?format=json", ("get",)),
    "v1:reportschedule-list": (lambda o: "/api/v1/report-schedules/", ("get", "post")),
    "v1:reportschedule-detail": (lambda o: f"/api/v1/report-schedules/{o['schedule'].pk}/",
                                 ("get", "patch", "delete")),
}
# Routes that hold no organization's data, or are not part of the API walk (with why).
NOT_WALKED = {
    "schema", "api-docs", "api-redoc",  # the OpenAPI description, public
    "login", "logout", "home", "switch-organization",  # console sign-in: tested in tests/console
    # console pages act in the session's organization; their roles and isolation: tests/console
    "console:overview", "console:policy", "console:policy-change", "console:policy-remove", "console:accounts",
    "console:account", "console:terms", "console:audit", "console:flows",
    # SCIM: its own token scope; isolation, auth and errors are tested in tests/scim
    "scim:root", "scim:service-provider-config", "scim:resource-types", "scim:resource-type", "scim:schemas",
    "scim:schema", "scim:users", "scim:user", "scim:groups", "scim:group", "scim:search", "scim:not-implemented",
}


def route_names(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin" or (pattern.app_name == "admin"):
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from route_names(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}"


def test_every_named_route_is_walked():
    missing = sorted(set(route_names()) - ROUTES.keys() - NOT_WALKED)
    assert not missing, f"routes not covered by the isolation and role walk: {missing}"


@pytest.fixture
def mine(org):
    """One object of every kind, in `org`."""
    group = GroupFactory(organization=org, display_name="Mine")
    account = AccountFactory(organization=org, user_name="mine@acme.test", groups=[group])
    transcript = DataCategory.objects.get(key="content.transcript")
    training = Purpose.objects.get(key="ai.training.first_party")
    rule, _ = governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=group, effect="allow",
                                  data_category=transcript, purpose=training)
    terms = governance.publish_terms(organization=org, actor=SYSTEM, version="v1", effective_at=timezone.now(),
                                     text_sha256="0" * 64)
    consent = governance.record_consent(organization=org, actor=SYSTEM, account=account, action="grant",
                                        mechanism="self_service", data_category=transcript, purpose=training)
    compiled = compiled_policy(org)
    batch = flows.receive_batch(organization=org, actor=SYSTEM, flows=flows.validate_flows(
        {"flows": [{"flow_id": "mine-1", "accounts": [account.user_name], "data_category": "content.transcript",
                    "purpose": "ai.training.first_party", "destination": "vendor.model_training",
                    "occurred_at": timezone.now().isoformat(), "volume": 1}]},
        catalog=compiled.snapshot.catalog, resolve_accounts=lambda names: {account.user_name: account.pk}))
    flows.process_batch(batch.pk)
    webhook = audit.create_webhook(organization=org, actor=SYSTEM, url="https://hooks.acme.test/x", secret="s" * 16)
    schedule = report_services.create_schedule(organization=org, actor=SYSTEM, name="Mine", cadence="weekly")
    today = timezone.now().date()
    report = report_services.request_report(organization=org, actor=SYSTEM, period_start=today,
                                            period_end=today + timedelta(days=1), formats=["json"], enqueue=False)
    report_services.generate_report(report.pk)
    audit.drain_outbox(org.pk)
    event = AuditEvent.objects.filter(organization=org).order_by("seq").last()
    return {"group": group, "account": account, "rule": rule, "terms": terms, "consent": consent,
            "batch": batch, "webhook": webhook, "event": event, "schedule": schedule, "report": report}


def snapshot(org):
    """What a refused request must leave unchanged."""
    return (Group.objects.filter(organization=org).count(), Account.objects.filter(organization=org, active=True)
            .count(), PolicyRule.objects.filter(organization=org, deleted_at__isnull=True).count(),
            list(PolicyRule.objects.filter(organization=org).values_list("effect", "locked")),
            TermsVersion.objects.filter(organization=org).count(), ConsentEvent.objects.filter(organization=org)
            .count(), TelemetryFlow.objects.filter(organization=org).count(),
            FlowBatch.objects.filter(organization=org).count(), WebhookEndpoint.objects.filter(organization=org)
            .count(), list(ReportSchedule.objects.filter(organization=org).values_list("name", "cadence", "active")),
            Report.objects.filter(organization=org).count())


def write_body(mine):
    """A body that would change something if the caller were allowed to, naming our objects."""
    return {"display_name": "Taken", "active": False, "effect": "deny", "locked": True, "url": "https://evil.test/",
            "secret": "t" * 16, "scope": "group", "group": mine["group"].pk, "feature": "chat_compose",
            "account": mine["account"].user_name, "user_name": "x@evil.test", "action": "revoke",
            "mechanism": "self_service", "data_category": "content.transcript", "purpose": "ai.training.first_party",
            "version": "evil", "effective_at": timezone.now().isoformat(), "text_sha256": "1" * 64,
            "flows": [{"flow_id": "evil", "accounts": [mine["account"].user_name], "data_category": "content.chat",
                       "purpose": "marketing", "destination": "evil", "occurred_at": timezone.now().isoformat()}]}


def call(client, method, path, body=None):
    return getattr(client, method)(path, body, format="json") if method != "get" else client.get(path)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_another_organization_finds_nothing_of_ours(name, org, other_org, mine):
    path_of, methods = ROUTES[name]
    path = path_of(mine)
    stranger = token_client(other_org)
    before = snapshot(org)
    for method in methods:
        response = call(stranger, method, path, write_body(mine))
        if name.endswith(("-detail", "-effective-policy")):
            assert response.status_code == 404, (method, path, response.status_code)
        else:
            assert response.status_code in (200, 202, 400, 404), (method, path, response.status_code)
            text = response.content.decode()
            for secret in (mine["account"].user_name, "Mine", "mine-1", "hooks.acme.test"):
                assert secret not in text, (method, path, secret)
    assert snapshot(org) == before


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_auditors_cannot_write_and_anonymous_callers_get_nothing(name, org, mine):
    path_of, methods = ROUTES[name]
    path = path_of(mine)
    auditor = session_client(org, "auditor")
    anonymous = APIClient()
    before = snapshot(org)
    for method in methods:
        if method in WRITE_METHODS:
            assert call(auditor, method, path, write_body(mine)).status_code == 403, (method, path)
        else:
            assert call(auditor, method, path).status_code == 200, (method, path)
        assert call(anonymous, method, path, write_body(mine)).status_code == 401, (method, path)
    assert snapshot(org) == before
