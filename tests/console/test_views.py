"""The console's pages: who may see and change what, one organization at a time, in a bounded number of queries."""
import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts import services as accounts
from identity.access import ORGANIZATION_KEY
from audit.actors import SYSTEM
from audit.models import AuditEvent
from identity import throttle
from flows.models import TelemetryFlow
from governance import services as governance
from governance.models import AIFeature, PolicyRule

from ..factories import AccountFactory, GroupFactory, OrganizationFactory, UserFactory
from .conftest import PASSWORD, member, populate, settle, signed_in

pytestmark = pytest.mark.django_db

PAGES = ["console:overview", "console:policy", "console:accounts", "console:terms", "console:audit", "console:flows",
         "console:tokens"]


@pytest.fixture(autouse=True)
def eager(eager_celery):
    """Tasks a commit hands the workers run in-process, as with the embedded default."""


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def acme(org):
    populate(org, people=12, days=3)
    return org


@pytest.fixture
def admin(acme):
    return signed_in(member(acme, "admin"))


@pytest.fixture
def auditor(acme):
    return signed_in(member(acme, "auditor"))


def chat_compose_switch(**overrides):
    return {"step": "preview", "scope": "organization", "feature": "chat_compose", "effect": "allow", **overrides}


# --- pages and roles -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_for_an_auditor_without_write_controls(auditor, page):
    response = auditor.get(reverse(page))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Auditor" in body
    assert reverse("console:policy-change") not in body  # no "set a switch", "turn on", "change", "remove"


def test_an_admin_sees_the_write_controls(admin):
    body = admin.get(reverse("console:policy")).content.decode()
    assert 'data-switch="chat_compose"' in body and reverse("console:policy-change") in body


def test_the_overview_embeds_four_plotly_figures_served_locally(admin):
    body = admin.get(reverse("console:overview"), {"days": 7}).content.decode()
    for name in ("sankey", "heatmap", "timeline", "treemap"):
        assert f'id="chart-{name}-data"' in body
    assert "/static/js/plotly.min.js" in body and "cdn" not in body.lower()


@pytest.mark.parametrize("days", ["7", "30", "90", "bogus"])
def test_the_period_picker_accepts_its_periods_and_ignores_anything_else(admin, days):
    response = admin.get(reverse("console:overview"), {"days": days, "uses": "all"})
    assert response.status_code == 200
    assert response.context["period"]["days"] == (int(days) if days.isdigit() else 30)


def test_home_leads_to_the_overview(admin):
    assert admin.get("/").url == reverse("console:overview")


def test_a_login_in_no_organization_is_told_so(db):
    response = signed_in(UserFactory()).get(reverse("console:overview"))
    assert response.status_code == 403 and b"No organization" in response.content


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("console:policy"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("method,url", [("get", "console:policy-change"), ("post", "console:policy-change")])
def test_an_auditor_cannot_set_a_switch(auditor, acme, method, url):
    before = PolicyRule.objects.filter(organization=acme).count()
    response = getattr(auditor, method)(reverse(url), chat_compose_switch(step="confirm", reason="try"))
    assert response.status_code == 403
    assert PolicyRule.objects.filter(organization=acme).count() == before


def test_an_auditor_cannot_remove_a_rule(auditor, acme):
    rule = PolicyRule.objects.filter(organization=acme, deleted_at__isnull=True).first()
    response = auditor.post(reverse("console:policy-remove", args=[rule.pk]), {"reason": "try"})
    assert response.status_code == 403
    assert PolicyRule.objects.get(pk=rule.pk).deleted_at is None


def test_a_switch_is_previewed_then_saved_with_its_reason_and_audited(admin, acme):
    # given chat compose off at organization level, on for Sales (4 of 12 people)
    # when the admin previews turning it on for everyone
    preview = admin.post(reverse("console:policy-change"), chat_compose_switch())
    impact = preview.context["impact"]
    assert preview.status_code == 200 and impact["accounts_changed"] > 0
    assert {row["display_name"] for row in impact["by_group"]} == {"Support", "Engineering"}
    assert not PolicyRule.objects.filter(organization=acme, scope="organization", feature__key="chat_compose").exists()

    # then confirming without a reason is refused, and saves nothing
    refused = admin.post(reverse("console:policy-change"), chat_compose_switch(step="confirm", reason=" "))
    assert refused.status_code == 400 and "reason" in refused.context["form"].errors
    assert not PolicyRule.objects.filter(organization=acme, scope="organization", feature__key="chat_compose").exists()

    # and with a reason it is saved through the service, audited with the console user as actor
    saved = admin.post(reverse("console:policy-change"), chat_compose_switch(step="confirm", reason="Rollout"))
    assert saved.status_code == 302
    rule = PolicyRule.objects.get(organization=acme, scope="organization", feature__key="chat_compose")
    assert (rule.effect, rule.reason, rule.created_by["kind"]) == ("allow", "Rollout", "user")
    settle(acme)  # the workers chain the outbox
    event = AuditEvent.objects.filter(organization=acme, kind="policy.changed").order_by("-seq").first()
    assert '"reason":"Rollout"' in event.body and event.actor_kind == "user"


def test_a_group_override_names_its_group_and_an_invalid_one_is_explained(admin, acme):
    sales = acme.groups.get(display_name="Sales")
    missing_group = admin.post(reverse("console:policy-change"), chat_compose_switch(scope="group"))
    assert missing_group.status_code == 400 and "scope" in missing_group.context["form"].errors
    preview = admin.post(reverse("console:policy-change"), chat_compose_switch(scope="group", group=sales.pk,
                                                                               effect="deny"))
    assert preview.status_code == 200 and preview.context["impact"]["accounts_changed"] > 0


def test_removing_a_rule_needs_a_reason(admin, acme):
    rule = PolicyRule.objects.get(organization=acme, scope="group", feature__key="chat_compose")
    assert admin.post(reverse("console:policy-remove", args=[rule.pk]), {"reason": ""}).status_code == 400
    assert admin.post(reverse("console:policy-remove", args=[rule.pk]), {"reason": "pilot over"}).status_code == 302
    assert PolicyRule.objects.get(pk=rule.pk).deleted_at is not None


def test_the_account_page_explains_each_value_and_lists_consents_and_flows(admin, acme):
    account = acme.accounts.get(user_name="p0@acme.example")
    response = admin.get(reverse("console:account", args=[account.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Account rule" in body and "captions" in body  # the transcription override and its reason
    assert "Organization rule" in body and "pilot" in body
    flows = TelemetryFlow.objects.filter(organization=acme, account_links__account=account).count()
    assert len(response.context["flows"]) == min(flows, 30)


def test_the_account_page_shows_the_groups_over_time(admin, acme):
    account = acme.accounts.get(user_name="p0@acme.example")
    support, sales = (acme.groups.get(display_name=name) for name in ("Support", "Sales"))
    accounts.update_account(account=account, actor=SYSTEM, groups=[sales])

    rows = admin.get(reverse("console:account", args=[account.pk])).context["memberships"]

    assert [(row["group"], row["until"] is None) for row in rows] == [("Sales", True), ("Support", False)]
    assert rows[1]["until"] == rows[0]["since"]  # left Support as it joined Sales


def test_accounts_filter_by_group_and_activity(admin, acme):
    sales = acme.groups.get(display_name="Sales")
    page = admin.get(reverse("console:accounts"), {"group": sales.pk, "active": "yes"}).context["page"]
    assert page.paginator.count == 4
    assert all(a.active and sales in a.groups.all() for a in page)
    found = admin.get(reverse("console:accounts"), {"q": "p11@"}).context["page"]
    assert [a.user_name for a in found] == ["p11@acme.example"]


def test_audit_and_flows_filter(admin, acme):
    events = admin.get(reverse("console:audit"), {"kind": "policy.changed"}).context["events"]
    assert events and {e.kind for e in events} == {"policy.changed"}
    status = admin.get(reverse("console:audit")).context["status"]
    assert status["verification"].valid and status["head_seq"] > 0
    flows = admin.get(reverse("console:flows"), {"verdict": "violation"}).context["flows"]
    assert flows and {f.verdict for f in flows} == {"violation"}
    unknown = admin.get(reverse("console:flows"), {"account": "nobody@example"})
    assert unknown.context["unknown_account"] and not unknown.context["flows"]


def test_the_audit_page_filters_report_events(admin, acme):
    from reports import services as reports
    reports.create_schedule(organization=acme, actor=SYSTEM, name="Monthly", cadence="monthly")
    settle(acme)
    events = admin.get(reverse("console:audit"), {"kind": "report.scheduled"}).context["events"]
    assert [e.kind for e in events] == ["report.scheduled"]


# --- isolation --------------------------------------------------------------------------------------------------

def test_nothing_of_another_organization_shows(admin, acme):
    other = OrganizationFactory(slug="globex")
    stranger = AccountFactory(organization=other, user_name="stranger@globex.example")
    group = GroupFactory(organization=other, display_name="Globex people")
    assert admin.get(reverse("console:account", args=[stranger.pk])).status_code == 404
    assert b"stranger@globex.example" not in admin.get(reverse("console:accounts"), {"q": "stranger"}).content
    assert admin.get(reverse("console:accounts"), {"group": group.pk}).context["form"].errors
    foreign = admin.post(reverse("console:policy-change"), chat_compose_switch(scope="account",
                                                                               account=stranger.user_name))
    assert foreign.status_code == 400 and "account" in foreign.context["form"].errors


def test_a_user_in_two_organizations_works_in_the_one_they_switch_to(acme):
    other = OrganizationFactory(slug="zeta", name="Zeta")
    AccountFactory(organization=other, user_name="zed@zeta.example")
    user = member(acme, "admin")
    accounts.add_org_role(organization=other, user=user, role="auditor", actor=SYSTEM)
    client = signed_in(user)

    first = client.get(reverse("console:accounts"))
    assert first.context["organization"] == acme and b"zed@zeta.example" not in first.content
    assert client.post(reverse("switch-organization"), {"organization": other.pk}).status_code == 302
    assert client.session[ORGANIZATION_KEY] == other.pk
    second = client.get(reverse("console:accounts"))
    assert second.context["organization"] == other and b"zed@zeta.example" in second.content
    assert b"p0@acme.example" not in second.content
    # an auditor there: the write controls are gone and refused
    assert client.get(reverse("console:policy-change")).status_code == 403


def test_a_switch_to_an_organization_one_is_not_a_member_of_is_refused(admin):
    other = OrganizationFactory(slug="nope")
    assert admin.post(reverse("switch-organization"), {"organization": other.pk}).status_code == 400


def test_a_rule_of_another_organization_cannot_be_removed(admin, acme):
    other = OrganizationFactory(slug="else")
    rule, _ = governance.set_rule(organization=other, actor=SYSTEM, scope="organization", effect="allow",
                                  feature=AIFeature.objects.get(key="chat_compose", organization=None))
    assert admin.post(reverse("console:policy-remove", args=[rule.pk]), {"reason": "x"}).status_code == 404


# --- CSRF and sign-in -------------------------------------------------------------------------------------------

def test_console_forms_need_the_csrf_token(acme):
    client = signed_in(member(acme, "admin"), enforce_csrf_checks=True)
    refused = client.post(reverse("console:policy-change"), chat_compose_switch(step="confirm", reason="x"))
    assert refused.status_code == 403
    page = client.get(reverse("console:policy"))
    token = page.context["csrf_token"]
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    accepted = client.post(reverse("console:policy-change"),
                           chat_compose_switch(step="confirm", reason="x", csrfmiddlewaretoken=str(token)))
    assert accepted.status_code == 302


def test_sign_in_needs_the_csrf_token(acme):
    user = member(acme, "admin")
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("login"), {"username": user.username, "password": PASSWORD}).status_code == 403


def test_sign_in_is_throttled_after_repeated_failures(acme):
    user = member(acme, "admin")
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(throttle.FAILURE_LIMIT):
        failed = client.post(reverse("login"), {"username": user.username, "password": "wrong"})
        assert failed.status_code == 400 and b"Please enter a correct" in failed.content
    # then even the right password is refused for a while, with a clear message
    locked = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert locked.status_code == 400 and b"Too many failed sign-in attempts" in locked.content
    assert "_auth_user_id" not in client.session
    # another address is not locked out
    elsewhere = Client(REMOTE_ADDR="198.51.100.2")
    assert elsewhere.post(reverse("login"), {"username": user.username, "password": PASSWORD}).status_code == 302


def test_a_successful_sign_in_clears_the_failures(acme):
    user = member(acme, "admin")
    client = Client(REMOTE_ADDR="203.0.113.8")
    for _ in range(throttle.FAILURE_LIMIT - 1):
        client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    assert client.post(reverse("login"), {"username": user.username, "password": PASSWORD}).status_code == 302
    assert not throttle.is_locked(user.username, "203.0.113.8")
    assert cache.get(throttle._key(user.username, "203.0.113.8")) is None


# --- query counts -----------------------------------------------------------------------------------------------

def page_urls(organization) -> list[str]:
    account = organization.accounts.order_by("pk").first()
    return ([reverse(p) for p in PAGES]
            + [reverse("console:overview") + "?days=90&uses=all", reverse("console:account", args=[account.pk]),
               reverse("console:policy-change") + "?scope=organization&feature=chat_compose",
               reverse("console:flows") + "?verdict=violation&account=" + account.user_name,
               reverse("console:audit") + "?kind=flow.violation&verify=1"])


MAX_QUERIES = 30


def queries_per_page(organization, assert_max_num_queries) -> list[int]:
    client = signed_in(member(organization, "admin"))
    counts = []
    for url in page_urls(organization):
        client.get(url)  # warm: the compiled policy is kept per process, as for the decision API
        with assert_max_num_queries(MAX_QUERIES) as queries:
            assert client.get(url).status_code == 200
        counts.append((url.replace(organization.slug, "ORG"), len(queries)))
    return counts


def test_page_query_counts_are_bounded_and_do_not_grow_with_accounts(django_assert_max_num_queries):
    small, large = OrganizationFactory(slug="small"), OrganizationFactory(slug="large")
    populate(small, people=20, days=3)
    populate(large, people=200, days=3)
    assert TelemetryFlow.objects.filter(organization=large).count() > 100

    few = queries_per_page(small, django_assert_max_num_queries)
    many = queries_per_page(large, django_assert_max_num_queries)

    assert [count for _, count in few] == [count for _, count in many], (few, many)


# --- proofs -----------------------------------------------------------------------------------------------------

def test_each_event_and_flow_offers_its_proof_once_a_signed_tree_head_covers_it(admin, acme):
    import json

    from audit import merkle
    from audit import services as audit
    page = admin.get(reverse("console:audit"))
    assert b'data-consistent="none"' in page.content and b"No signed tree head yet" in page.content
    assert b'data-proof="pending"' in page.content and b'data-proof="available"' not in page.content
    event = AuditEvent.objects.filter(organization=acme).order_by("seq").first()
    refused = admin.get(reverse("console:audit-proof", args=[event.seq]))
    assert refused.status_code == 409 and b"next signed tree head will cover it" in refused.content

    first = audit.write_digest(acme)
    page = admin.get(reverse("console:audit"))
    assert b'data-consistent="none"' in page.content and b"No previous tree head" in page.content
    assert first.root_hash[:16].encode() in page.content and first.key_fingerprint[:16].encode() in page.content
    assert b'data-proof="available"' in page.content and b"<script>" not in page.content
    proof = admin.get(reverse("console:audit-proof", args=[event.seq]))
    assert proof.status_code == 200 and proof["Content-Type"] == "application/json"
    assert proof["Content-Disposition"] == f'attachment; filename="{acme.slug}-event-{event.seq}-proof.json"'
    body = json.loads(proof.content)
    assert body["entry"] == event.body and body["event"]["seq"] == event.seq
    head = json.loads(body["tree_head"]["body"])
    assert merkle.verify_inclusion(merkle.leaf_hash(event.body.encode()), event.leaf_index, head["tree_size"],
                                   [bytes.fromhex(h) for h in body["audit_path"]], bytes.fromhex(head["root_hash"]))

    batch = AuditEvent.objects.filter(organization=acme, kind="flow.batch").order_by("seq").first()
    payload = json.loads(batch.body)["payload"]
    assert (f"Batch {payload['batch']}: {payload['leaf_count']} flow(s), {payload['counts']['permitted']} permitted"
            in admin.get(reverse("console:audit"), {"kind": "flow.batch"}).content.decode())

    flow = TelemetryFlow.objects.filter(organization=acme).order_by("leaf_index").first()
    assert b'data-proof="available"' in admin.get(reverse("console:flows")).content
    proof = admin.get(reverse("console:flow-proof", args=[flow.pk]))
    assert proof.status_code == 200 and "attachment" in proof["Content-Disposition"]
    assert json.loads(proof.content)["flow"]["flow_id"] == flow.flow_id

    audit.write_digest(acme)
    assert b'data-consistent="yes"' in admin.get(reverse("console:audit")).content


def test_proofs_of_another_organization_are_not_found_and_auditors_may_download(auditor, acme):
    from audit import services as audit
    other = OrganizationFactory(slug="globex")
    populate(other, people=2, days=1)
    audit.write_digest(other)
    audit.write_digest(acme)
    their_flow = TelemetryFlow.objects.filter(organization=other).first()
    assert auditor.get(reverse("console:flow-proof", args=[their_flow.pk])).status_code == 404
    last = AuditEvent.objects.filter(organization=acme).order_by("-seq").first()
    assert auditor.get(reverse("console:audit-proof", args=[last.seq + 1000])).status_code == 404
    assert auditor.get(reverse("console:audit-proof", args=[last.seq])).status_code == 200
    assert Client().get(reverse("console:audit-proof", args=[last.seq])).status_code == 302
