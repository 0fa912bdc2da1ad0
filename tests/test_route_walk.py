"""Every route of the API, SCIM and the console, every method.

For each route: another organization's caller finds nothing of ours and changes nothing; read-only
roles (auditors, and for SCIM any credential but a SCIM token) cannot write; anonymous callers are
refused; the methods a route does not serve are refused with 405; console writes need a CSRF token.
The owner's own calls reach every route, so a wrong path cannot make a refusal pass.

Routes are found by walking the URL resolver, named or not: a route missing from ROUTES fails
`test_every_route_is_walked`, so no view can be added without being walked.
"""
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as accounts
from accounts.models import Account, AccountGroup, ApiToken, Group, Organization, OrgRole
from scim.schemas import GROUP_URN, PATCH_OP_URN, SEARCH_REQUEST_URN, USER_URN
from audit import services as audit
from audit.actors import SYSTEM
from audit.models import AuditEvent, OutboxEntry
from flows import webhooks
from flows.batches import process_batch, receive_batch
from flows.models import FlowBatch, TelemetryFlow, WebhookEndpoint
from flows.validation import validate_flows
from governance import services as governance
from governance.models import ConsentEvent, DataCategory, PolicyRule, Purpose, TermsVersion
from governance.selectors import compiled_policy
from identity import invitations
from identity.models import IdentityProvider, Invitation
from reports import services as report_services
from reports.models import Report, ReportSchedule

from .conftest import token_client
from .factories import AccountFactory, GroupFactory, OrganizationFactory, OrgRoleFactory, sign_in
from .identity.saml_idp import key_and_certificate

pytestmark = pytest.mark.django_db

METHODS = ("get", "head", "options", "post", "put", "patch", "delete")
WRITES = frozenset({"post", "put", "patch", "delete"})
CONSOLE_FORM = ("get", "post")


@dataclass(frozen=True)
class Route:
    """How to reach one route with the objects of the walked organization, and what it serves."""

    surface: str  # "api", "scim", "console" or "public": which credentials it takes
    path: Callable[[dict], str]
    methods: tuple[str, ...]  # served; every other method must be refused
    names_ours: bool = False  # the path names one of our objects: to anyone else it does not exist
    owner_status: int | None = None  # a route that answers every caller the same way (catch-alls)
    session_only: bool = False  # its writes change only the caller's own session (readers may use them)
    writers_only: bool = False  # a console form for writers: readers are refused its page too
    reads_only: bool = False  # its POST only computes an answer and saves nothing (readers may use it)

    def serves(self, method: str) -> bool:
        if method == "head":  # Django serves HEAD wherever GET is, except where a view lists its methods
            return "get" in self.methods and self.surface != "console"
        return method in self.methods


def api(path, methods, **kwargs):
    return Route("api", path, methods, **kwargs)


def scim(path, methods=("get",), **kwargs):
    return Route("scim", lambda o: f"/scim/v2/{path(o)}", methods, **kwargs)


def console(path, methods=("get",), **kwargs):
    return Route("console", path, methods, **kwargs)


RESOURCE = ("get", "put", "patch", "delete")
ROUTES = {
    # REST API
    "v1:catalog": api(lambda o: "/api/v1/catalog/", ("get",)),
    "v1:decisions": api(lambda o: "/api/v1/decisions/", ("post",), reads_only=True),
    "v1:exposure": api(lambda o: "/api/v1/exposure/", ("get",)),
    "v1:group-list": api(lambda o: "/api/v1/groups/", ("get", "post")),
    "v1:group-detail": api(lambda o: f"/api/v1/groups/{o['group'].pk}/", ("get", "put", "patch"), names_ours=True),
    "v1:account-list": api(lambda o: "/api/v1/accounts/", ("get", "post")),
    "v1:account-detail": api(lambda o: f"/api/v1/accounts/{o['account'].pk}/", ("get", "put", "patch"),
                             names_ours=True),
    "v1:account-effective-policy": api(lambda o: f"/api/v1/accounts/{o['account'].pk}/effective-policy/",
                                       ("get",), names_ours=True),
    "v1:policyrule-list": api(lambda o: "/api/v1/policy-rules/", ("get", "post")),
    "v1:policyrule-detail": api(lambda o: f"/api/v1/policy-rules/{o['rule'].pk}/", ("get", "patch", "delete"),
                                names_ours=True),
    "v1:policyrule-simulate": api(lambda o: "/api/v1/policy-rules/simulate/", ("post",), reads_only=True),
    "v1:auditevent-list": api(lambda o: "/api/v1/audit-events/", ("get",)),
    "v1:auditevent-detail": api(lambda o: f"/api/v1/audit-events/{o['event'].seq}/", ("get",), names_ours=True),
    "v1:auditevent-verify": api(lambda o: "/api/v1/audit-events/verify/", ("get",)),
    "v1:auditevent-proof": api(lambda o: f"/api/v1/audit-events/{o['event'].seq}/proof/", ("get",), names_ours=True),
    "v1:auditevent-tree-heads": api(lambda o: "/api/v1/audit-events/tree-heads/", ("get",)),
    "v1:auditevent-consistency": api(lambda o: f"/api/v1/audit-events/consistency/?first={o['head'].pk}", ("get",),
                                     names_ours=True),
    "v1:termsversion-list": api(lambda o: "/api/v1/terms-versions/", ("get", "post")),
    "v1:termsversion-detail": api(lambda o: f"/api/v1/terms-versions/{o['terms'].pk}/", ("get",), names_ours=True),
    "v1:consent-list": api(lambda o: "/api/v1/consents/", ("get", "post")),
    "v1:consent-detail": api(lambda o: f"/api/v1/consents/{o['consent'].pk}/", ("get",), names_ours=True),
    "v1:flow-list": api(lambda o: "/api/v1/flows/", ("get", "post")),
    "v1:flow-proof": api(lambda o: f"/api/v1/flows/{o['flow'].pk}/proof/", ("get",), names_ours=True),
    "v1:flowbatch-list": api(lambda o: "/api/v1/flow-batches/", ("get",)),
    "v1:flowbatch-detail": api(lambda o: f"/api/v1/flow-batches/{o['batch'].pk}/", ("get",), names_ours=True),
    "v1:webhook-list": api(lambda o: "/api/v1/webhooks/", ("get", "post")),
    "v1:webhook-detail": api(lambda o: f"/api/v1/webhooks/{o['webhook'].pk}/", ("get", "patch", "delete"),
                             names_ours=True),
    "v1:report-list": api(lambda o: "/api/v1/reports/", ("get", "post")),
    "v1:report-detail": api(lambda o: f"/api/v1/reports/{o['report'].pk}/", ("get",), names_ours=True),
    "v1:report-download": api(lambda o: f"/api/v1/reports/{o['report'].pk}/download/?format=json", ("get",),
                              names_ours=True),
    "v1:reportschedule-list": api(lambda o: "/api/v1/report-schedules/", ("get", "post")),
    "v1:reportschedule-detail": api(lambda o: f"/api/v1/report-schedules/{o['schedule'].pk}/",
                                    ("get", "patch", "delete"), names_ours=True),
    "<^(api|scim)/>": api(lambda o: "/api/v2/groups/", METHODS, owner_status=404),
    # SCIM 2.0
    "scim:root": scim(lambda o: "", METHODS, owner_status=404),
    "scim:<^>": scim(lambda o: f"Accounts/{o['account'].pk}", METHODS, owner_status=404),
    "scim:service-provider-config": scim(lambda o: "ServiceProviderConfig"),
    "scim:resource-types": scim(lambda o: "ResourceTypes"),
    "scim:resource-type": scim(lambda o: "ResourceTypes/User"),
    "scim:schemas": scim(lambda o: "Schemas"),
    "scim:schema": scim(lambda o: f"Schemas/{USER_URN}"),
    "scim:users": scim(lambda o: "Users", ("get", "post")),
    "scim:user": scim(lambda o: f"Users/{o['account'].pk}", RESOURCE, names_ours=True),
    "scim:groups": scim(lambda o: "Groups", ("get", "post")),
    "scim:group": scim(lambda o: f"Groups/{o['group'].pk}", RESOURCE, names_ours=True),
    "scim:search": scim(lambda o: ".search", ("post",)),
    "scim:not-implemented": scim(lambda o: "Bulk", ("get", "post", "put", "patch", "delete"), owner_status=501),
    # the console
    "home": console(lambda o: "/"),
    "switch-organization": console(lambda o: "/organization/", ("post",), session_only=True),
    "mfa": console(lambda o: "/sign-in/code/", CONSOLE_FORM, session_only=True),  # a code checks this session
    "sso-required": console(lambda o: "/sign-in/sso-required/"),
    "console:overview": console(lambda o: "/console/"),
    "console:policy": console(lambda o: "/console/policy/"),
    "console:policy-change": console(lambda o: "/console/policy/change/", CONSOLE_FORM, writers_only=True),
    "console:policy-remove": console(lambda o: f"/console/policy/rules/{o['rule'].pk}/remove/", CONSOLE_FORM,
                                     names_ours=True, writers_only=True),
    "console:accounts": console(lambda o: "/console/accounts/"),
    "console:account": console(lambda o: f"/console/accounts/{o['account'].pk}/", names_ours=True),
    "console:terms": console(lambda o: "/console/terms/"),
    "console:audit": console(lambda o: "/console/audit/"),
    "console:flows": console(lambda o: "/console/flows/"),
    "console:audit-proof": console(lambda o: f"/console/audit/events/{o['event'].seq}/proof/", names_ours=True),
    "console:flow-proof": console(lambda o: f"/console/flows/{o['flow'].pk}/proof/", names_ours=True),
    "console:tokens": console(lambda o: "/console/tokens/", CONSOLE_FORM),
    "console:token-revoke": console(lambda o: f"/console/tokens/{o['token'].pk}/revoke/", ("post",),
                                    names_ours=True, writers_only=True),
    "console:settings": console(lambda o: "/console/settings/", CONSOLE_FORM),  # owners change it
    "console:sso": console(lambda o: "/console/settings/single-sign-on/", CONSOLE_FORM),  # owners change it
    "console:people": console(lambda o: "/console/people/", CONSOLE_FORM),  # owners invite
    "console:person-role": console(lambda o: f"/console/people/{o['person'].pk}/role/", ("post",),
                                   names_ours=True, writers_only=True),
    "console:person-remove": console(lambda o: f"/console/people/{o['person'].pk}/remove/", ("post",),
                                     names_ours=True, writers_only=True),
    "console:person-mfa-reset": console(lambda o: f"/console/people/{o['person'].pk}/code-reset/", ("post",),
                                        names_ours=True, writers_only=True),
    "console:invitation-revoke": console(lambda o: f"/console/invitations/{o['invitation'].pk}/revoke/",
                                         ("post",), names_ours=True, writers_only=True),
    # open to anyone: nothing of any organization's behind them
    "schema": Route("public", lambda o: "/api/schema/", ("get",)),
    "api-docs": Route("public", lambda o: "/api/docs/", ("get",)),
    "api-redoc": Route("public", lambda o: "/api/redoc/", ("get",)),
    "login": Route("public", lambda o: "/login/", ("get", "post")),
    # SAML sign-in to an organization with a SAML IdP (not the walked one: a refused answer is audited there)
    "saml-metadata": Route("public", lambda o: f"/sso/{o['saml_org'].slug}/saml/metadata/", ("get",)),
    # the IdP's answer: anything but one to a sign-in this browser started is refused, whoever posts it
    "saml-acs": Route("public", lambda o: f"/sso/{o['saml_org'].slug}/saml/acs/", ("post",), owner_status=403),
    "logout": Route("public", lambda o: "/logout/", ("post", "options")),  # Django's LogoutView answers OPTIONS
    # Single sign-on (the walked organization has no IdP: its pages send everyone back to /login/)
    "sso-find": Route("public", lambda o: "/sso/", ("post",)),
    "sso-start": Route("public", lambda o: f"/sso/{o['org'].slug}/", ("get",)),
    "sso-callback": Route("public", lambda o: f"/sso/{o['org'].slug}/callback/?code=c&state=s", ("get",)),
    # Django's admin sign-in: no form of its own, only the way to /login/ (GET 302, a posted form 307)
    "admin:login": Route("public", lambda o: "/admin/login/", ("get", "post")),
    # a forgotten password: the mail's link is its own credential (walked with a broken one)
    "password-reset": Route("public", lambda o: "/password-reset/", ("get", "post")),
    "password-reset-done": Route("public", lambda o: "/password-reset/done/", ("get",)),
    "password-reset-complete": Route("public", lambda o: "/password-reset/complete/", ("get",)),
    "password-reset-confirm": Route("public", lambda o: "/password-reset/MQ/broken-link/", ("get", "post")),
    # an invitation's link is its own credential: walked with a live one of an organization of its own
    "invitation": Route("public", lambda o: invitation_path(), ("get", "post")),
}


def invitation_path() -> str:
    """A live invitation elsewhere: its page names that organization, none of the walked one's secrets."""
    elsewhere, _ = Organization.objects.get_or_create(slug="elsewhere", defaults={"name": "Elsewhere"})
    _, raw = invitations.invite(organization=elsewhere, email="invited@elsewhere.test", role="admin", actor=SYSTEM)
    return f"/invitations/{raw}/"


def route_names(resolver=None, namespace=""):
    """Every URL pattern: `namespace:name`, or `namespace:<regex>` for an unnamed one. Django's admin
    site is the platform operator's (staff users only): tested apart below, all but its sign-in page,
    which is walked like every door."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                yield from (f"admin:{p.name}" for p in pattern.url_patterns if getattr(p, "name", "") == "login")
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from route_names(pattern, inner)
        elif isinstance(pattern, URLPattern):
            yield f"{namespace}{pattern.name or f'<{pattern.pattern}>'}"


def test_every_route_is_walked():
    names = set(route_names())
    assert not sorted(names - ROUTES.keys()), f"routes not covered by the walk: {sorted(names - ROUTES.keys())}"
    assert not sorted(ROUTES.keys() - names), f"walked routes that no longer exist: {sorted(ROUTES.keys() - names)}"


# ---------------------------------------------------------------------------------------------------
# The walked organization's objects, and what must not change

@pytest.fixture(scope="session")
def idp_certificate(tmp_path_factory):
    return key_and_certificate(tmp_path_factory.mktemp("walked-idp"), "walked-idp")[1].read_text()


@pytest.fixture
def mine(org, idp_certificate):
    """One object of every kind, in `org`, with names found nowhere else."""
    group = GroupFactory(organization=org, display_name="Quokka Team")
    account = AccountFactory(organization=org, user_name="quokka@acme.test", groups=[group])
    transcript = DataCategory.objects.get(key="content.transcript")
    training = Purpose.objects.get(key="ai.training.first_party")
    rule, _ = governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=group, effect="allow",
                                  data_category=transcript, purpose=training)
    terms = governance.publish_terms(organization=org, actor=SYSTEM, version="v1", effective_at=timezone.now(),
                                     text_sha256="0" * 64)
    consent = governance.record_consent(organization=org, actor=SYSTEM, account=account, action="grant",
                                        mechanism="self_service", data_category=transcript, purpose=training)
    compiled = compiled_policy(org)
    batch = receive_batch(organization=org, actor=SYSTEM, flows=validate_flows(
        {"flows": [{"flow_id": "quokka-flow-1", "accounts": [account.user_name], "data_category": "content.transcript",
                    "purpose": "ai.training.first_party", "destination": "vendor.model_training",
                    "occurred_at": timezone.now().isoformat(), "volume": 1}]},
        catalog=compiled.snapshot.catalog, resolve_accounts=lambda names: {account.user_name: account.pk}))
    process_batch(batch.pk)
    webhook = webhooks.create_webhook(organization=org, actor=SYSTEM, url="https://hooks.acme.test/x", secret="s" * 16)
    schedule = report_services.create_schedule(organization=org, actor=SYSTEM, name="Quokka weekly", cadence="weekly")
    today = timezone.now().date()
    report = report_services.request_report(organization=org, actor=SYSTEM, period_start=today,
                                            period_end=today + timedelta(days=1), formats=["json"], enqueue=False)
    report_services.generate_report(report.pk)
    token, _ = accounts.create_api_token(organization=org, name="Quokka billing", scope="api", actor=SYSTEM)
    person = OrgRoleFactory(organization=org, role="auditor", user__username="quokka-keeper@acme.test").user
    invitation, _ = invitations.invite(organization=org, email="quokka-new@acme.test", role="admin", actor=SYSTEM)
    audit.drain_outbox(org.pk)
    event = AuditEvent.objects.filter(organization=org).order_by("seq").last()
    head = audit.write_digest(org)  # a signed tree head: every leaf so far has a proof
    saml_org = OrganizationFactory(slug="walked-saml", name="Walked SAML")
    IdentityProvider.objects.create(organization=saml_org, protocol="saml", saml_entity_id="https://idp.walked.test",
                                    saml_sso_url="https://idp.walked.test/sso", saml_certificate=idp_certificate)
    return {"org": org, "group": group, "account": account, "rule": rule, "terms": terms, "consent": consent,
            "batch": batch, "webhook": webhook, "event": event, "head": head,
            "flow": TelemetryFlow.objects.get(organization=org, flow_id="quokka-flow-1"), "schedule": schedule,
            "report": report,
            "token": token, "saml_org": saml_org, "person": person, "invitation": invitation,
            "secrets": (org.name, account.user_name, group.display_name, "quokka-flow-1", "hooks.acme.test",
                        schedule.name, token.name, token.hint, person.username, invitation.email)}


def snapshot(org):
    """What a refused request must leave unchanged."""
    def rows(model, *fields, **filters):
        return sorted(model.objects.filter(organization=org, **filters).values_list(*fields))
    return (rows(Group, "pk", "display_name", "external_id"),
            rows(Account, "pk", "user_name", "active", "external_id"),
            sorted(AccountGroup.objects.filter(group__organization=org).values_list("account_id", "group_id")),
            rows(PolicyRule, "pk", "effect", "locked", "deleted_at"),
            rows(TermsVersion, "pk"), rows(ConsentEvent, "pk"), rows(TelemetryFlow, "pk"), rows(FlowBatch, "pk"),
            rows(WebhookEndpoint, "pk", "url", "active"), rows(ReportSchedule, "pk", "name", "cadence", "active"),
            rows(Report, "pk"), rows(ApiToken, "pk", "revoked_at"), rows(OrgRole, "user_id", "role"),
            rows(OutboxEntry, "pk"), rows(AuditEvent, "pk"), rows(Invitation, "pk", "revoked_at", "accepted_at"),
            list(Organization.objects.filter(pk=org.pk).values_list("email_domains")))


def write_body(route, mine):
    """A body that would change something if the caller were allowed to, naming our objects."""
    if route.surface == "scim":
        return {"schemas": [USER_URN, GROUP_URN, PATCH_OP_URN, SEARCH_REQUEST_URN], "userName": "x@evil.test",
                "displayName": "Taken", "active": False, "members": [{"value": str(mine["account"].pk)}],
                "Operations": [{"op": "replace", "path": "active", "value": False}], "filter": 'userName sw "q"'}
    if route.surface in ("console", "public"):
        return {"step": "confirm", "reason": "walked", "scope": "group", "group": mine["group"].pk,
                "data_category": "content.transcript", "purpose": "ai.training.first_party", "effect": "deny",
                "locked": "on", "organization": mine["org"].pk, "username": "x", "password": "y",
                "email_domains": "evil.test"}
    return {"display_name": "Taken", "active": False, "effect": "deny", "locked": True, "url": "https://evil.test/",
            "secret": "t" * 16, "scope": "group", "group": mine["group"].pk, "feature": "chat_compose",
            "account": mine["account"].user_name, "user_name": "x@evil.test", "action": "revoke",
            "mechanism": "self_service", "data_category": "content.transcript", "purpose": "ai.training.first_party",
            "version": "evil", "effective_at": timezone.now().isoformat(), "text_sha256": "1" * 64,
            "flows": [{"flow_id": "evil", "accounts": [mine["account"].user_name], "data_category": "content.chat",
                       "purpose": "marketing", "destination": "evil", "occurred_at": timezone.now().isoformat()}]}


def call(client, route, method, path, body):
    if method in ("get", "head", "options"):
        return getattr(client, method)(path)
    if route.surface in ("console", "public"):
        if method == "post":
            return client.post(path, body)
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


# ---------------------------------------------------------------------------------------------------
# Who calls

def console_client(organization, role, **kwargs):
    client = Client(**kwargs)
    sign_in(client, OrgRoleFactory(organization=organization, role=role).user)
    return client


def owner_of(route, org):
    if route.surface == "scim":
        return token_client(org, scope="scim")
    if route.surface == "api":
        return token_client(org)
    return console_client(org, "owner")


def stranger_of(route, other_org):
    return owner_of(route, other_org)


def readers_of(route, org):
    """Callers of our organization who may read but not write: writes get 403 (SCIM: every call)."""
    if route.surface == "scim":  # only a SCIM token provisions: an API token or a console session does not
        return [token_client(org), console_client(org, "admin")]
    if route.surface == "public":
        return []
    return [console_client(org, "auditor")]


# ---------------------------------------------------------------------------------------------------
# The walks

WALKED = sorted(ROUTES)


def refused(response, route) -> bool:
    """A refusal: an error status, or the console's sign-in redirect."""
    return response.status_code in (400, 401, 403, 404, 405) or (
        route.surface == "console" and response.status_code == 302 and "/login/" in response["Location"])


@pytest.mark.parametrize("name", WALKED)
def test_the_owner_reaches_every_method_it_serves(name, org, mine):
    """The paths are right: our own caller finds each object, and unserved methods answer 405."""
    route = ROUTES[name]
    path = route.path(mine)
    owner = owner_of(route, org)
    for method in METHODS:  # DELETE last: the object is gone after it
        response = call(owner, route, method, path, write_body(route, mine))
        if route.owner_status is not None and route.serves(method):
            assert response.status_code == route.owner_status, (method, path, response.status_code)
        elif route.serves(method):
            assert response.status_code not in (401, 403, 404, 405), (method, path, response.status_code)
            if method == "get" and route.surface != "public":
                assert response.status_code in (200, 302), (method, path, response.status_code)
        else:
            assert response.status_code == 405, (method, path, response.status_code)


@pytest.mark.parametrize("name", WALKED)
def test_another_organization_finds_nothing_of_ours(name, org, other_org, mine):
    route = ROUTES[name]
    path = route.path(mine)
    stranger = stranger_of(route, other_org)
    before = snapshot(org)
    for method in METHODS:
        response = call(stranger, route, method, path, write_body(route, mine))
        if route.names_ours and route.serves(method):
            assert response.status_code == 404, (method, path, response.status_code)
        elif not route.serves(method):
            assert refused(response, route), (method, path, response.status_code)
        text = response.content.decode(errors="replace")
        for secret in mine["secrets"]:
            assert secret not in text, (method, path, secret)
    assert snapshot(org) == before


@pytest.mark.parametrize("name", WALKED)
def test_readers_cannot_write(name, org, mine):
    route = ROUTES[name]
    path = route.path(mine)
    readers = readers_of(route, org)
    before = snapshot(org)
    for reader in readers:
        for method in METHODS:
            status = call(reader, route, method, path, write_body(route, mine)).status_code
            if route.owner_status is not None:
                assert status in (401, 403, route.owner_status), (method, path, status)
            elif route.surface == "scim":
                assert status in (401, 403), (method, path, status)
            elif not route.serves(method):  # the API checks the role before the method
                assert status in ((403, 405) if method in WRITES else (405,)), (method, path, status)
            elif route.reads_only and method in WRITES:  # a refusal here is about the body, not the role
                assert status in (200, 400, 415), (method, path, status)
            elif route.writers_only or (method in WRITES and not route.session_only):
                assert status == 403, (method, path, status)
            elif method in ("get", "head"):
                assert status in (200, 302), (method, path, status)
    assert snapshot(org) == before


@pytest.mark.parametrize("name", WALKED)
def test_anonymous_callers_get_nothing(name, org, mine):
    route = ROUTES[name]
    path = route.path(mine)
    anonymous = Client() if route.surface in ("console", "public") else APIClient()
    before = snapshot(org)
    for method in METHODS:
        response = call(anonymous, route, method, path, write_body(route, mine))
        status = response.status_code
        if route.surface == "public":
            # 403: a form post without CSRF; 307: a form posted to the admin sign-in goes on to /login/;
            # 400: a form refused (an invitation's page)
            assert status in (200, 302, 307, 400, 403, 405), (method, path, status)
        elif route.surface == "console":
            if route.serves(method):
                assert status == 302 and response["Location"].startswith("/login/"), (method, path, status)
            else:
                assert status == 405, (method, path, status)
        elif route.owner_status is not None:
            assert status in (401, route.owner_status), (method, path, status)
        else:
            assert status == 401, (method, path, status)
        for secret in mine["secrets"]:
            assert secret not in response.content.decode(errors="replace"), (method, path, secret)
    assert snapshot(org) == before


@pytest.mark.parametrize("name", [name for name in WALKED if ROUTES[name].surface in ("api", "console", "public")
                                  and ROUTES[name].owner_status is None and WRITES & set(ROUTES[name].methods)])
def test_session_writes_without_a_csrf_token_are_refused(name, org, mine):
    """A signed-in admin's browser can be made to send a request; without the page's CSRF token it fails."""
    route = ROUTES[name]
    path = route.path(mine)
    browser = console_client(org, "admin", enforce_csrf_checks=True)
    before = snapshot(org)
    for method in sorted(WRITES & set(route.methods)):
        if route.surface == "api":
            response = getattr(browser, method)(path, write_body(route, mine), content_type="application/json")
        else:
            response = call(browser, route, method, path, write_body(route, mine))
        assert response.status_code == 403, (method, path, response.status_code)
    assert snapshot(org) == before


def test_organization_admins_are_not_let_into_the_platform_admin_site(org, mine):
    """/admin/ is for the platform's staff; an organization's admin is sent to its sign-in page."""
    admin = console_client(org, "owner")
    for path in ("/admin/", "/admin/accounts/account/", f"/admin/accounts/account/{mine['account'].pk}/change/"):
        response = admin.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path
