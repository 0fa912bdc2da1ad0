"""Reported flows: validated whole, judged as of when they happened, chained, rolled up, never twice."""
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db.models import Sum
from django.utils import timezone

from audit import merkle
from audit.models import AuditEvent
from audit.selectors import verify_chain
from flows.batches import process_batch
from flows.leaves import leaf_of
from flows.models import ExposureRollup, FlowBatch, TelemetryFlow, WebhookDelivery
from flows.webhooks import signature
from governance.models import PolicyRuleVersion

from ..factories import AccountFactory

pytestmark = pytest.mark.django_db
TRAINING = {"data_category": "content.transcript", "purpose": "ai.training.first_party"}


def flow(flow_id, accounts, when=None, **overrides):
    return {"flow_id": flow_id, "accounts": [a.user_name for a in accounts], **TRAINING,
            "destination": "vendor.model_training", "occurred_at": (when or timezone.now()).isoformat(),
            "volume": 10, **overrides}


@pytest.fixture(autouse=True)
def workers_after_commit(django_capture_on_commit_callbacks, eager_celery):
    """Run what a commit hands to the workers (eagerly here), as a real commit would."""
    global _after_commit
    _after_commit = django_capture_on_commit_callbacks
    yield


def post(api, *flows):
    with _after_commit(execute=True):
        return api.post("/api/v1/flows/", {"flows": list(flows)}, format="json")


@pytest.fixture
def training_allowed(api):
    api.post("/api/v1/policy-rules/", {"scope": "organization", **TRAINING, "effect": "allow"}, format="json")


_after_commit = None


def consent(api, account, action="grant", when=None):
    body = {"account": account.user_name, "action": action, "mechanism": "self_service", **TRAINING}
    if when:
        body["occurred_at"] = when.isoformat()
    assert api.post("/api/v1/consents/", body, format="json").status_code == 201


def test_a_batch_is_judged_chained_and_rolled_up(api, org, people, training_allowed):
    consent(api, people[0])
    response = post(api, flow("a", [people[0]]), flow("b", [people[0], people[1]]),
                    flow("c", [people[2]], data_category="telemetry.usage", purpose="service.provision",
                         destination="vendor.service"))
    assert response.status_code == 202
    batch = api.get(f"/api/v1/flow-batches/{response.json()['batch_id']}/").json()
    assert batch["status"] == "done" and batch["counts"] == {"permitted": 2, "violation": 1, "duplicate": 0}

    violations = api.get("/api/v1/flows/", {"verdict": "violation"}).json()["results"]
    assert [v["flow_id"] for v in violations] == ["b"]
    assert violations[0]["blocking_accounts"] == [people[1].user_name]
    assert violations[0]["reasons"][0]["code"] == "consent_missing"

    # the flows are leaves of the log, followed by their batch's one chained event
    event = AuditEvent.objects.get(organization=org, kind="flow.batch")
    payload = json.loads(event.body)["payload"]
    flows = list(TelemetryFlow.objects.filter(organization=org).order_by("leaf_index"))
    assert [f.flow_id for f in flows] == ["a", "b", "c"]
    assert [f.leaf_index for f in flows] == [event.leaf_index - 3, event.leaf_index - 2, event.leaf_index - 1]
    assert (payload["first_leaf"], payload["leaf_count"]) == (flows[0].leaf_index, 3)
    assert payload["leaves_root"] == merkle.root_of(merkle.leaf_hash(leaf_of(f)[1]) for f in flows).hex()
    assert {f.audit_seq for f in flows} == {event.seq}
    assert verify_chain(org).valid
    assert api.get("/api/v1/flows/", {"account": people[1].user_name}).json()["results"][0]["flow_id"] == "b"


def test_resending_a_flow_id_changes_nothing(api, org, people):
    post(api, flow("same", [people[0]]))
    response = post(api, flow("same", [people[0]]), flow("new", [people[1]]))
    batch = FlowBatch.objects.get(pk=response.json()["batch_id"])
    assert batch.counts["duplicate"] == 1
    assert TelemetryFlow.objects.filter(organization=org).count() == 2
    assert list(TelemetryFlow.objects.filter(organization=org).order_by("leaf_index")
                .values_list("flow_id", flat=True)) == ["same", "new"]


def test_judging_a_batch_twice_writes_it_once(api, org, people):
    batch_id = post(api, flow("x", [people[0]])).json()["batch_id"]
    process_batch(batch_id)
    process_batch(batch_id)
    assert TelemetryFlow.objects.filter(organization=org).count() == 1


def test_late_flows_are_judged_by_the_past_state(api, org, people, training_allowed):
    three_hours_ago = timezone.now() - timedelta(hours=3)
    PolicyRuleVersion.objects.filter(organization=org).update(valid_from=timezone.now() - timedelta(days=1))
    consent(api, people[0], when=timezone.now() - timedelta(days=2))
    consent(api, people[0], action="revoke")  # revoked just now
    rule = api.get("/api/v1/policy-rules/").json()["results"][0]
    api.patch(f"/api/v1/policy-rules/{rule['id']}/", {"effect": "deny"}, format="json")  # and denied now

    post(api, flow("late", [people[0]], when=three_hours_ago), flow("now", [people[0]]))
    verdicts = dict(TelemetryFlow.objects.values_list("flow_id", "verdict"))
    assert verdicts == {"late": "permitted", "now": "violation"}


def test_rollups_agree_with_a_direct_count_over_the_raw_flows(api, org, people, sales, training_allowed):
    consent(api, people[0])
    loner = AccountFactory(organization=org)
    days = [timezone.now() - timedelta(days=d, hours=1) for d in (0, 1, 2)]
    post(api, *[flow(f"f{i}", [people[i % 3], loner] if i % 4 == 0 else [people[i % 3]], when=days[i % 3],
                     volume=i) for i in range(30)])
    post(api, flow("g0", [people[0]], when=days[0], volume=7))

    rolled = ExposureRollup.objects.filter(organization=org, group_key=sales.pk)
    raw = TelemetryFlow.objects.filter(organization=org, account_links__account__groups=sales).distinct()
    assert rolled.aggregate(n=Sum("flows"))["n"] == raw.count()
    assert rolled.aggregate(v=Sum("volume"))["v"] == raw.aggregate(v=Sum("volume"))["v"]
    assert rolled.filter(verdict="violation").aggregate(n=Sum("flows"))["n"] == raw.filter(verdict="violation").count()
    for day in {d.date() for d in days}:
        for verdict in ("permitted", "violation"):
            distinct = (raw.filter(occurred_at__date=day, verdict=verdict)
                        .values("account_links__account").distinct().count())
            counted = rolled.filter(day=day, verdict=verdict).aggregate(n=Sum("accounts"))["n"] or 0
            assert counted == distinct, (day, verdict)
    exposure = api.get("/api/v1/exposure/").json()
    assert sum(c["flows"] for c in exposure["cells"] if c["group"] == sales.pk) == raw.count()
    no_group = [c for c in exposure["cells"] if c["group"] is None]
    assert sum(c["flows"] for c in no_group) == TelemetryFlow.objects.filter(account_links__account=loner).count()


class TestBadBatches:
    """Refused whole with problem+json naming the items; nothing stored."""

    @pytest.fixture(autouse=True)
    def nothing_stored(self, org):
        yield
        assert not FlowBatch.objects.exists()

    def fields(self, response):
        assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
        return {e["field"] for e in response.json()["errors"]}

    def test_unknown_keys_accounts_and_bad_timestamps(self, api, people, other_org):
        stranger = AccountFactory(organization=other_org)
        fields = self.fields(post(api, flow("ok", [people[0]]), flow("bad-cat", [people[0]], data_category="x"),
                                  flow("future", [people[0]], when=timezone.now() + timedelta(hours=1)),
                                  {**flow("naive", [people[0]]), "occurred_at": "2026-01-01T10:00:00"},
                                  {**flow("extra", [people[0]]), "colour": "red"}))
        assert fields == {"flows[1].data_category", "flows[2].occurred_at", "flows[3].occurred_at",
                          "flows[4].colour"}
        assert self.fields(post(api, flow("s", [stranger]))) == {"flows[0].accounts"}

    def test_oversized_and_empty_batches(self, api, people):
        assert self.fields(post(api)) == {"flows"}
        too_many = [flow(f"f{i}", [people[0]]) for i in range(10_001)]
        assert self.fields(api.post("/api/v1/flows/", {"flows": too_many}, format="json")) == {"flows"}

    def test_a_flow_id_repeated_within_the_batch(self, api, people):
        assert self.fields(post(api, flow("d", [people[0]]), flow("d", [people[1]]))) == {"flows[1].flow_id"}


class Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_new_violations_are_posted_to_the_webhook_signed(api, org, people, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the test receiver is on loopback
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Receiver.received = []
    try:
        secret = "s3cret-s3cret-s3cret"
        created = api.post("/api/v1/webhooks/", {"url": f"http://127.0.0.1:{server.server_port}/hook",
                                                 "secret": secret}, format="json")
        assert created.status_code == 201 and "secret" not in created.json()
        post(api, flow("v1", [people[0]]), flow("ok", [people[0]], data_category="telemetry.usage",
                                                 purpose="service.provision", destination="vendor.service"))
    finally:
        server.shutdown()
    (headers, body), = Receiver.received
    expected = signature(secret, headers["X-Webhook-Timestamp"], body)
    assert headers["X-Signature-256"] == f"sha256={expected}"
    assert [v["flow_id"] for v in json.loads(body)["violations"]] == ["v1"]
    assert WebhookDelivery.objects.get().status == "delivered"


def test_an_unreachable_webhook_is_kept_for_retry(api, org, people, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    created = api.post("/api/v1/webhooks/", {"url": f"http://127.0.0.1:{port}/nothing-listens", "secret": "x" * 16},
                       format="json")
    assert created.status_code == 201
    from flows.webhooks import DeliveryFailed, deliver
    post(api, flow("v1", [people[0]]))  # the first attempt fails; a worker retries it with backoff
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts >= 1 and delivery.last_error
    with pytest.raises(DeliveryFailed):
        deliver(delivery.pk)


def test_a_month_of_flows_is_a_violation_exactly_where_consent_is_missing_stale_or_revoked(api, org, people):
    # given: training on transcripts allowed for 40 days, and five people with different consent stories
    api.post("/api/v1/policy-rules/", {"scope": "organization", **TRAINING, "effect": "allow"}, format="json")
    now = timezone.now()
    PolicyRuleVersion.objects.filter(organization=org).update(valid_from=now - timedelta(days=40))
    ago = lambda days: now - timedelta(days=days)  # noqa: E731
    for version, days, reconsent in (("v1", 60, False), ("v2", 15, True)):
        api.post("/api/v1/terms-versions/", {"version": version, "effective_at": ago(days).isoformat(),
                                             "text_sha256": "0" * 64, "covers": [TRAINING],
                                             "requires_reconsent": reconsent}, format="json")
    steady, never, revoker, stale, renewed = [AccountFactory(organization=org) for _ in range(5)]

    def grant(account, days, terms="v1", action="grant"):
        response = api.post("/api/v1/consents/", {"account": account.user_name, "action": action,
                                                  "mechanism": "self_service", "terms_version": terms,
                                                  "occurred_at": ago(days).isoformat(), **TRAINING}, format="json")
        assert response.status_code == 201, response.content

    grant(steady, 35, terms="v2")
    grant(revoker, 35, terms="v2")
    grant(revoker, 10, action="revoke")
    grant(stale, 35)
    grant(renewed, 35)
    grant(renewed, 5, terms="v2")

    def expected(account, days):  # what each story means on a day `days` ago
        if account is steady:
            return "permitted", None
        if account is never:
            return "violation", "consent_missing"
        if account is revoker:
            return ("permitted", None) if days > 10 else ("violation", "consent_revoked")
        if account is stale:
            return ("permitted", None) if days > 15 else ("violation", "consent_stale")
        return ("permitted", None) if days > 15 or days <= 5 else ("violation", "consent_stale")

    # when: a month of reported flows, one per person per day, arrives late in three batches
    month = [(account, days) for days in range(30, 0, -1) for account in (steady, never, revoker, stale, renewed)]
    flows = [flow(f"{account.pk}-{days}", [account], when=ago(days) + timedelta(hours=1)) for account, days in month]
    for start in range(0, len(flows), 50):
        assert post(api, *flows[start:start + 50]).status_code == 202

    # then: every verdict and every blocking reason is the story's
    judged = {f.flow_id: f for f in TelemetryFlow.objects.filter(organization=org)}
    assert len(judged) == len(month)
    for account, days in month:
        row = judged[f"{account.pk}-{days}"]
        verdict, code = expected(account, days)
        assert row.verdict == verdict, (account.user_name, days)
        assert (row.reasons[0]["code"] if verdict == "violation" else None) == code, (account.user_name, days)
    assert verify_chain(org).valid
