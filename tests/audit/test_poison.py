"""Nothing the API accepts may stop the evidence: what can't be chained is refused before it is
written, and a row that can't be chained anyway stops its organization's chain loudly, never silently."""
import hashlib
import logging

import orjson
import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.actors import SYSTEM
from audit.models import AuditEvent, ChainHead, OutboxEntry, OutboxRepair
from audit.selectors import verify_chain
from audit.tasks import sweep
from flows.batches import process_batch, receive_batch
from flows.models import FlowBatch
from flows.validation import validate_flows
from governance.models import ConsentEvent
from governance.selectors import compiled_policy

from ..conftest import session_client
from ..factories import AccountFactory
from ..workers import celery_worker, purge_queue, wait_for

pytestmark = pytest.mark.django_db

CONSENT = {"action": "grant", "mechanism": "self_service", "data_category": "content.transcript",
           "purpose": "ai.training.first_party"}


def nested(levels: int, leaf="x"):
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def nested_json(levels: int) -> bytes:
    """The probe's request body: evidence nested `levels` deep, about 3 KB at 990 levels."""
    return b'{"evidence": ' + b'{"a":' * levels + b'1' + b'}' * levels + b"}"


def post_consent(api, account, **body):
    return api.post("/api/v1/consents/", {"account": account.user_name, **CONSENT, **body}, format="json")


def written() -> tuple[int, int]:
    """What a refused request must not change: consents and outbox rows."""
    return ConsentEvent.objects.count(), OutboxEntry.objects.count()


def consent_body(account, levels: int) -> bytes:
    """A consent whose evidence is nested `levels` deep, written out as raw JSON."""
    start = orjson.dumps({"account": account.user_name, **CONSENT})[:-1]
    return start + b", " + nested_json(levels)[1:]


def chained_kinds(org) -> list[str]:
    return list(AuditEvent.objects.filter(organization=org).order_by("seq").values_list("kind", flat=True))


@pytest.mark.parametrize("levels", [9, 300, 990])
def test_evidence_nested_too_deep_is_refused_naming_the_field_and_nothing_is_written(api, org, people, levels):
    before = written()
    response = api.post("/api/v1/consents/", consent_body(people[0], levels), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == ["evidence"]
    assert "deeper than 8 levels" in response.json()["errors"][0]["detail"]
    assert written() == before


@pytest.mark.parametrize("evidence, says", [
    ({"prompt": "nul\u0000inside"}, "NUL"),
    ({"nul\u0000key": 1}, "NUL"),
    ({"n": 2**60}, "integers must lie within"),
    ({"n": -(2**53)}, "integers must lie within"),
    ({f"k{i}": i for i in range(300)}, "more than 256 members"),
    ({"list": list(range(300))}, "more than 256 members"),
    ({"text": "x" * 20_000}, "bytes encoded; the limit is 16384"),
    ({"k" * 200: 1}, "longer than 128 characters"),
], ids=["nul-in-string", "nul-in-key", "int-2^60", "int-past-2^53", "too-many-keys", "too-many-items",
        "too-large", "key-too-long"])
def test_evidence_outside_the_documented_limits_is_refused_and_nothing_is_written(api, org, people, evidence, says):
    before = written()
    response = post_consent(api, people[0], evidence=evidence)
    assert response.status_code == 400, response.content[:300]
    errors = response.json()["errors"]
    assert errors[0]["field"] == "evidence" and says in errors[0]["detail"], errors
    assert written() == before


def test_evidence_within_the_limits_is_kept_as_sent_and_chained(api, org, people):
    evidence = {"prompt": {"shown": "Allow training?", "choices": ["yes", "no"]}, "request": 2**53 - 1,
                "ratio": 0.25, "ok": True, "none": None, "é": "ünïcode"}
    response = post_consent(api, people[0], evidence=nested(5, leaf=evidence))
    assert response.status_code == 201, response.content
    audit.drain_outbox(org.pk)
    event = AuditEvent.objects.get(organization=org, kind="consent.granted")
    assert orjson.loads(event.body)["payload"]["evidence"] == nested(5, leaf=evidence)
    assert response.json()["evidence"] == nested(5, leaf=evidence)


def test_after_a_refused_request_the_next_good_change_is_chained(api, org, people):
    refused = api.post("/api/v1/consents/", consent_body(people[0], 300), content_type="application/json")
    assert refused.status_code == 400
    assert post_consent(api, people[0], evidence={"source": "dialog"}).status_code == 201
    audit.drain_outbox(org.pk)
    assert "consent.granted" in chained_kinds(org)
    assert not OutboxEntry.objects.filter(organization=org).exists()
    assert verify_chain(org).valid


def test_recording_a_change_the_chain_could_not_hold_is_refused_inside_its_transaction(org):
    before = OutboxEntry.objects.count()
    with pytest.raises(audit.UnchainableChange, match="cannot be recorded in the audit trail"):
        with transaction.atomic():
            audit.record(organization=org, kind="account.changed", actor=SYSTEM, payload={"deep": nested(300)})
    with pytest.raises(audit.UnchainableChange, match="actor.name"):
        with transaction.atomic():
            audit.record(organization=org, kind="account.changed", actor=SYSTEM.__class__("token", 1, "t" * 201),
                         payload={})
    assert OutboxEntry.objects.count() == before


def poisoned_outbox(org):
    """A good change, one the chain can't hold (as written before the API checked), another good change."""
    with transaction.atomic():
        first = audit.record(organization=org, kind="group.created", actor=SYSTEM, payload={"n": 1})
        bad = OutboxEntry.objects.create(organization=org, kind="consent.granted", actor=SYSTEM.as_dict(),
                                         payload={"evidence": nested(300)}, occurred_at=timezone.now())
        after = audit.record(organization=org, kind="group.created", actor=SYSTEM, payload={"n": 2})
    return first, bad, after


class TestAStalledChain:
    @pytest.fixture
    def stalled(self, org):
        audit.drain_outbox(org.pk)  # what the fixtures recorded (the organization, its people, tokens)
        self.before = chained_kinds(org)
        first, bad, after = poisoned_outbox(org)
        assert audit.drain_outbox(org.pk) == 1
        return bad

    @property
    def seq(self) -> int:
        """The seq the stopped row would take."""
        return len(self.before) + 2

    def test_stops_right_before_the_row_and_keeps_everything_after_it_waiting(self, org, stalled):
        assert chained_kinds(org) == [*self.before, "group.created"]
        head = ChainHead.objects.get(organization=org)
        assert head.stalled_outbox_id == stalled.pk and head.stalled_since is not None
        assert "Recursion limit" in head.stall_error or "recursion" in head.stall_error.lower()
        assert OutboxEntry.objects.filter(organization=org).count() == 2
        assert audit.drain_outbox(org.pk) == 0  # tried again, still stopped, nothing skipped
        assert chained_kinds(org) == [*self.before, "group.created"]

    def test_pipeline_status_exits_1_naming_the_organization_the_seq_and_the_error(self, org, stalled, capsys):
        with pytest.raises(SystemExit) as exited:
            call_command("pipeline_status")
        assert exited.value.code == 1
        err = capsys.readouterr().err
        assert f"organization acme stops at seq {self.seq}: outbox row {stalled.pk} cannot be chained" in err
        assert "Recursion limit" in err and "repair_outbox_entry" in err

    def test_verify_reports_the_pending_changes_and_the_stall_next_to_valid(self, api, org, stalled):
        answer = api.get("/api/v1/audit-events/verify/").json()
        assert answer["valid"] is True and answer["events_checked"] == self.seq - 1
        assert answer["pending"] == 2 and answer["oldest_pending_at"] is not None
        assert answer["stalled"]["seq"] == self.seq and answer["stalled"]["outbox_id"] == stalled.pk
        assert "Recursion limit" in answer["stalled"]["error"]

    def test_owners_and_admins_see_a_red_banner_auditors_do_not(self, org, stalled):
        for role, shown in (("owner", True), ("admin", True), ("auditor", False)):
            page = session_client(org, role).get("/console/").content.decode()
            assert ('role="alert"><strong>The audit trail is stopped.' in page) is shown, role

    def test_the_sweep_logs_it_at_error_every_round(self, org, stalled, settings, eager_celery, caplog):
        settings.AUDIT_SWEEP_AFTER_SECONDS = 0
        for _ in range(2):
            with caplog.at_level(logging.ERROR, logger="audit.operations"):
                result = sweep.apply().get()
            assert result["stalled_chains"] == [org.pk]
        lines = [r for r in caplog.records if r.levelno == logging.ERROR and f"acme stalled at seq {self.seq}" in r.getMessage()]
        assert len(lines) == 2

    def test_flows_wait_rather_than_being_chained_ahead_of_the_stopped_changes(self, org, stalled,
                                                                                django_assert_max_num_queries):
        account = AccountFactory(organization=org)
        with transaction.atomic():
            batch = receive_batch(organization=org, actor=SYSTEM, flows=validate_flows(
                {"flows": [{"flow_id": "f1", "accounts": [account.user_name], "data_category": "telemetry.usage",
                            "purpose": "service.provision", "destination": "vendor.service",
                            "occurred_at": timezone.now().isoformat()}]},
                catalog=compiled_policy(org).snapshot.catalog,
                resolve_accounts=lambda names: {account.user_name: account.pk}))
        # the sweep brings back up to FLOW_SWEEP_LIMIT waiting batches a round: each must cost next to nothing
        with django_assert_max_num_queries(5):
            assert "stalled" in process_batch(batch.pk)["waiting"]
        assert FlowBatch.objects.get(pk=batch.pk).status == FlowBatch.Status.RECEIVED
        assert chained_kinds(org) == [*self.before, "group.created"]

    def test_the_repair_procedure_resumes_the_chain_without_editing_it(self, org, stalled, capsys):
        original = OutboxEntry.objects.get(pk=stalled.pk)
        call_command("repair_outbox_entry", org="acme", entry=stalled.pk, reason="INC-42", by="oncall")
        assert "2 change(s) chained" in capsys.readouterr().out
        assert chained_kinds(org) == [*self.before, "group.created", "consent.granted", "group.created"]
        repair = OutboxRepair.objects.get(outbox_id=stalled.pk)
        payload = orjson.loads(AuditEvent.objects.get(organization=org, seq=self.seq).body)["payload"]["repaired"]
        assert payload["original_sha256"] == repair.original_sha256 == hashlib.sha256(
            repair.original_payload.encode()).hexdigest()
        assert (payload["reason"], payload["repaired_by"], payload["repair"]) == ("INC-42", "oncall", repair.pk)
        assert orjson.loads(repair.original_payload.encode()) == original.payload  # kept whole, outside the chain
        assert ChainHead.objects.get(organization=org).stalled_outbox_id is None
        assert verify_chain(org).valid

    def test_the_repair_refuses_a_row_that_is_not_the_stopped_one(self, org, stalled):
        waiting = OutboxEntry.objects.filter(organization=org).order_by("id").last()
        from django.core.management.base import CommandError
        with pytest.raises(CommandError, match="not the oldest pending row"):
            call_command("repair_outbox_entry", org="acme", entry=waiting.pk, reason="x", by="y")
        assert not OutboxRepair.objects.exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_probes_request_replayed_on_postgresql_with_a_real_worker_stops_nothing(api, org, people):
    purge_queue()
    with celery_worker():
        raw = consent_body(people[0], 990)
        assert 2_900 < len(raw) < 6_500
        refused = api.post("/api/v1/consents/", raw, content_type="application/json")
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "evidence"
        assert not ConsentEvent.objects.exists()

        good = post_consent(api, people[0], evidence={"source": "privacy settings"})
        assert good.status_code == 201, good.content
        wait_for(lambda: "consent.granted" in chained_kinds(org), timeout=20, what="the good change to be chained")
    assert not OutboxEntry.objects.filter(organization=org).exists()
    assert ChainHead.objects.get(organization=org).stalled_outbox_id is None
    assert api.get("/api/v1/audit-events/verify/").json()["valid"] is True
    assert api.get("/api/v1/consents/").status_code == 200


def test_keys_our_own_code_writes_as_numbers_or_enum_members_are_chained_as_the_database_stores_them(org):
    from audit.models import EventKind
    with transaction.atomic():
        audit.record(organization=org, kind="account.changed", actor=SYSTEM,
                     payload={"by_kind": {EventKind.POLICY_CHANGED: 1}, "by_id": {7: "x"}})
    audit.drain_outbox(org.pk)
    body = orjson.loads(AuditEvent.objects.filter(organization=org, kind="account.changed").get().body)
    assert body["payload"] == {"by_kind": {"policy.changed": 1}, "by_id": {"7": "x"}}


def test_a_consent_stored_before_the_limits_with_unencodable_evidence_still_lists(api, org, people):
    # given: a row as the probe left it, written before the API checked evidence
    from governance.models import DataCategory, Purpose
    ConsentEvent.objects.create(
        organization=org, account=people[0], data_category=DataCategory.objects.get(key="content.transcript"),
        purpose=Purpose.objects.get(key="ai.training.first_party"), action="grant", mechanism="self_service",
        evidence=nested(300), occurred_at=timezone.now(), recorded_at=timezone.now(), recorded_by=SYSTEM.as_dict())
    # when
    response = api.get("/api/v1/consents/")
    # then
    assert response.status_code == 200, response.content[:300]
    evidence = response.json()["results"][0]["evidence"]
    for _ in range(63):
        evidence = evidence["a"]
    assert evidence == {"a": "(withheld: nested deeper than 64 levels)"}
