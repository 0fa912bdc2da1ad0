"""What a monthly report states: the switches at the month's end, its changes, consent, violations,
the record of processing and the audit evidence; the same each time; the same numbers as the API."""
import json
from datetime import timedelta

import pytest

from accounts import services as accounts
from audit import services as audit
from audit.models import AuditEvent
from flows.models import FlowBatch
from reports import services
from reports.models import Report

from .conftest import ADMIN, clock

pytestmark = pytest.mark.django_db


def generate(org, month, formats=("json",)) -> tuple[Report, dict]:
    report = services.request_report(organization=org, actor=ADMIN, period_start=month.start,
                                     period_end=month.end, formats=list(formats), enqueue=False)
    report = services.generate_report(report.pk)
    assert report.status == Report.Status.DONE, report.error
    return report, json.loads(bytes(report.files.get(format="json").content))


def by(rows, **match):
    return next(row for row in rows if all(row.get(k) == v for k, v in match.items()))


def test_the_switches_are_those_in_force_at_the_end_of_the_month(org, month, after_the_month):
    _, doc = generate(org, month)
    switches = doc["switches"]

    summary = by(switches["features"], feature="meeting_summary")
    assert (summary["effect"], summary["decided_by"], summary["reason"]) == ("allow", "organization", "Pilot approved")
    assert (summary["groups_allowing"], summary["groups_denying"]) == (1, 1)
    compose = by(switches["features"], feature="chat_compose")
    assert compose["effect"] == "deny" and compose["groups_allowing"] == 1  # the Sales rule, deleted only after

    legal = by(switches["groups"], name="Legal")["differences"]
    assert by(legal, feature="meeting_summary")["effect"] == "deny"
    assert by(legal, feature="meeting_summary")["locked"] is True
    sales = by(switches["groups"], name="Sales")["differences"]
    assert by(sales, feature="chat_compose")["reason"] == "Sales pilot"

    training = by(switches["data_sharing"], data_category="content.transcript", purpose="ai.training.first_party")
    assert training["effect"] == "allow" and training["locked"] and training["needs_consent"]
    assert {r["id"] for r in switches["rules"]} == {r.pk for r in month.rules.values()}


def test_policy_changes_of_the_month_say_who_when_and_why(org, month, after_the_month):
    _, doc = generate(org, month)
    changes = doc["policy_changes"]
    assert [(c["action"], c["scope"], c["group_name"], c["reason"]) for c in changes] == [
        ("created", "group", "Sales", "Sales pilot"), ("changed", "organization", "", "Works council agreed")]
    assert changes[0]["target"] == doc["catalog"]["features"]["chat_compose"]["name"]
    assert all(c["actor"] == "dana@acme.example" and c["occurred_at"].startswith(month.day(2).date().isoformat())
               for c in changes)
    assert (changes[1]["locked_before"], changes[1]["locked_after"]) == (False, True)


def test_consent_coverage_counts_not_freely_given_and_stale_apart(org, month, after_the_month):
    _, doc = generate(org, month)
    consent = doc["consent"]
    training = by(consent["by_use"], data_category="content.transcript", purpose="ai.training.first_party")
    # six governed accounts: gus left during the month, hal came after it
    assert {k: training[k] for k in ("accounts", "freely_given", "not_freely_given", "stale", "revoked", "missing")} == \
        {"accounts": 6, "freely_given": 1, "not_freely_given": 2, "stale": 1, "revoked": 1, "missing": 1}
    assert training["coverage"] == 0.5
    sales = by(consent["by_group_use"], group_name="Sales", data_category="content.transcript",
               purpose="ai.training.first_party")
    assert (sales["freely_given"], sales["not_freely_given"], sales["stale"], sales["missing"]) == (1, 1, 1, 1)
    assert by(consent["by_group_use"], group_name="(no group)", data_category="content.transcript",
              purpose="ai.training.first_party")["not_freely_given"] == 1
    assert consent["activity"]["grants"] == 5 and consent["activity"]["grants_not_freely_given"] == 2
    assert consent["activity"]["revocations"] == 1


def test_violations_by_category_purpose_destination_group_and_account(org, month, after_the_month):
    _, doc = generate(org, month)
    flows = doc["violations"]
    assert (flows["flows"], flows["violations"], flows["violating_accounts"]) == (6, 4, 3)
    assert by(flows["by_category"], data_category="content.transcript")["violations"] == 3
    assert by(flows["by_purpose"], purpose="ai.training.third_party")["violations"] == 1
    assert by(flows["by_destination"], destination="vendor.service") == {
        "destination": "vendor.service", "flows": 1, "volume": 10, "violations": 0, "violation_volume": 0}
    assert (by(flows["by_group"], name="Sales")["flows"], by(flows["by_group"], name="Sales")["violations"]) == (4, 3)
    assert (by(flows["by_group"], name="Legal")["flows"], by(flows["by_group"], name="Legal")["violations"]) == (3, 2)
    assert [(a["account"], a["violations"]) for a in flows["worst_accounts"]] == [
        ("eve@acme.example", 2), ("cy@acme.example", 1), ("fay@acme.example", 1)]
    assert by(flows["worst_accounts"], account="eve@acme.example")["groups"] == ["Legal", "Sales"]
    assert sum(d["violations"] for d in flows["daily"]) == 4 and len(flows["daily"]) == (month.end - month.start).days


def test_the_record_of_processing_names_the_basis_of_each_use(org, month, after_the_month):
    _, doc = generate(org, month)
    record = doc["processing_record"]
    training = by(record, data_category="content.transcript", purpose="ai.training.first_party")
    assert training["destination"] == "vendor.model_training" and training["basis"] == "consent"
    assert "3 of 6 accounts, 2 not freely given, 1 stale" in training["basis_detail"]
    assert f"policy rule #{month.rules['training'].pk}" in training["basis_detail"]
    assert training["fides_data_use"] and training["fides_data_category"]
    usage = by(record, data_category="telemetry.usage", purpose="service.provision", destination="vendor.service")
    assert usage["basis"] == "catalog default" and usage["flows"] == 1
    chat = by(record, data_category="content.chat", purpose="ai.training.third_party")
    assert chat["basis"] == "none" and chat["violations"] == 1
    by_feature = by(record, data_category="content.transcript", purpose="ai.inference")
    assert by_feature["basis"] == "feature" and "meeting_summary" in by_feature["basis_detail"]


def test_the_audit_evidence_is_a_verified_chain_and_a_signed_digest_covering_the_month(org, month, after_the_month):
    report, doc = generate(org, month)
    digest = doc["audit"]["digest"]
    assert digest["signature_valid"] is True and digest["period_end"] >= month.end_at.isoformat()[:19]
    chain = doc["audit"]["chain"]
    assert chain["valid"] is True and chain["problem"] == "" and chain["digests_checked"] == 1
    # no digest before the month: from the first event to the one the covering digest signed
    assert (chain["first_seq"], chain["last_seq"]) == (1, digest["last_seq"]) == (1, chain["events_checked"])
    assert "flow.violation" not in doc["audit"]["events_in_period"]  # flows are leaves, in their batch's event
    assert doc["audit"]["events_in_period"]["flow.batch"] == FlowBatch.objects.filter(
        organization=org, received_at__lt=month.end_at).count()
    assert doc["audit"]["events_in_period"]["policy.changed"] == 2
    audit.drain_outbox(org.pk)
    generated = AuditEvent.objects.filter(organization=org, kind="report.generated").get()
    payload = json.loads(generated.body)["payload"]
    assert payload["report"] == report.pk
    assert payload["files"]["json"]["sha256"] == report.files.get(format="json").sha256


def test_the_chain_is_verified_from_the_digest_before_the_month(org, month):
    with clock(month.start_at - timedelta(hours=1)):
        audit.drain_outbox(org.pk)
        before = audit.write_digest(org)
    _, doc = generate(org, month)
    chain = doc["audit"]["chain"]
    assert chain["valid"] and chain["first_seq"] == before.last_seq + 1 and chain["digests_checked"] == 2
    assert chain["events_checked"] == doc["audit"]["digest"]["last_seq"] - before.last_seq


def test_an_event_of_the_month_altered_behind_the_triggers_back_is_named(org, month):
    from ..audit.test_chain import behind_the_triggers_back
    generate(org, month)  # a digest now covers the month's end
    event = AuditEvent.objects.filter(organization=org, kind="policy.changed").order_by("seq").last()
    behind_the_triggers_back("UPDATE audit_auditevent SET body = %s WHERE id = %s",
                             [event.body.replace('"payload":{', '"payload":{"effect":"allow",'), event.pk])
    _, doc = generate(org, month)
    chain = doc["audit"]["chain"]
    assert (chain["valid"], chain["first_invalid_seq"]) == (False, event.seq)
    assert chain["problem"] == "hash does not match the event's content"
    assert doc["summary"]["chain_valid"] is False


def test_a_rewritten_actor_column_is_named_though_the_body_and_hashes_are_intact(org, month):
    """The `?actor=` filter reads the column; the report's chain check compares it with the hashed body."""
    from ..audit.test_chain import behind_the_triggers_back
    generate(org, month)
    event = AuditEvent.objects.filter(organization=org, kind="policy.changed").order_by("seq").first()
    behind_the_triggers_back("UPDATE audit_auditevent SET actor_name = %s WHERE id = %s", ["someone else", event.pk])
    chain = generate(org, month)[1]["audit"]["chain"]
    assert (chain["valid"], chain["first_invalid_seq"]) == (False, event.seq)
    assert "actor_name" in chain["problem"]


def test_a_closed_month_generated_twice_gives_the_same_report(org, month, after_the_month):
    _, first = generate(org, month)
    accounts.create_account(organization=org, actor=ADMIN, user_name="ivy@acme.example")
    _, second = generate(org, month)
    assert first.pop("generated")["report"] != second.pop("generated")["report"]
    assert first == second


def test_the_report_counts_what_the_api_counts(api, org, month, after_the_month):
    _, doc = generate(org, month)
    exposure = api.get("/api/v1/exposure/", {"since": month.start.isoformat(),
                                             "until": doc["period"]["last_day"]}).json()
    assert doc["violations"]["exposure"] == exposure["cells"]
    assert sum(g["violations"] for g in doc["violations"]["by_group"]) == sum(c["violations"] for c in exposure["cells"])

    violations, url = [], "/api/v1/flows/"
    params = {"verdict": "violation", "occurred_after": month.start_at.isoformat(),
              "occurred_before": month.end_at.isoformat(), "page_size": 2}
    while url:
        page = api.get(url, params).json()
        violations += page["results"]
        url, params = page["next"], None
    assert doc["violations"]["violations"] == len(violations) == 4
    all_flows = api.get("/api/v1/flows/", {"occurred_after": month.start_at.isoformat(),
                                           "occurred_before": month.end_at.isoformat()}).json()["results"]
    assert doc["violations"]["flows"] == len(all_flows)
    blocking = {name for flow in violations for name in flow["blocking_accounts"]}
    assert doc["violations"]["violating_accounts"] == len(blocking)
