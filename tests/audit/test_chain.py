"""The chain as an auditor relies on it: complete, linear, append-only, verifiable offline."""
import json
from datetime import datetime
from datetime import timezone as dt_timezone
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from accounts import services as accounts
from audit import services as audit
from audit.actors import SYSTEM
from audit.chain import canonical_json, iso
from audit.models import AuditDigest, AuditEvent, ChainHead, OutboxEntry
from audit.selectors import export_chain, verify_chain
from audit.verification import verify_export
from config import append_only

from ..factories import AccountFactory

pytestmark = pytest.mark.django_db


def record_changes(org, n):
    with transaction.atomic():
        audit.record_many(organization=org, kind="account.changed", actor=SYSTEM,
                          entries=[(None, {"n": i, "name": "Zoë"}) for i in range(n)])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # outside the test's own wrapping transaction
def test_record_refuses_to_run_outside_a_transaction(org):
    with pytest.raises(audit.NotInTransaction):
        audit.record(organization=org, kind="policy.changed", actor=SYSTEM, payload={})


def test_a_change_that_rolls_back_leaves_no_record(org):
    with pytest.raises(RuntimeError), transaction.atomic():
        accounts.create_group(organization=org, actor=SYSTEM, display_name="Ghosts")
        raise RuntimeError("the request failed after the write")
    assert not OutboxEntry.objects.filter(kind="group.created").exists()


def test_drain_chains_every_row_once_in_order(org):
    record_changes(org, 25)
    assert audit.drain_outbox(org.pk, batch_size=10) == 25
    assert audit.drain_outbox(org.pk) == 0  # a second run finds nothing to do
    events = list(AuditEvent.objects.filter(organization=org).order_by("seq"))
    assert [e.seq for e in events] == list(range(1, 26))
    assert [json.loads(e.body)["payload"]["n"] for e in events] == list(range(25))
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:]))
    assert not OutboxEntry.objects.exists()
    assert ChainHead.objects.get(organization=org).seq == 25
    assert verify_chain(org).valid


def test_each_organization_has_its_own_chain(org, other_org):
    record_changes(org, 3)
    record_changes(other_org, 2)
    audit.drain_outbox(org.pk)
    audit.drain_outbox(other_org.pk)
    assert list(AuditEvent.objects.filter(organization=other_org).values_list("seq", flat=True)) == [1, 2]
    assert verify_chain(org).valid and verify_chain(other_org).valid


class TestAppendOnly:
    @pytest.fixture
    def chained(self, org):
        record_changes(org, 5)
        audit.drain_outbox(org.pk)
        return org

    def test_update_is_refused(self, chained):
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.filter(organization=chained, seq=3).update(kind="flow.permitted")
        assert AuditEvent.objects.get(organization=chained, seq=3).kind == "account.changed"

    def test_delete_is_refused(self, chained):
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.filter(organization=chained, seq=5).delete()
        assert AuditEvent.objects.filter(organization=chained).count() == 5

    @pytest.mark.services  # PostgreSQL: SQLite has no TRUNCATE (a DELETE without WHERE fires the DELETE trigger)
    def test_truncate_is_refused_on_every_append_only_table(self, chained):
        assert connection.vendor == "postgresql"
        audit.write_digest(chained)
        tables = tables_refusing_update()
        assert tables >= {"audit_auditevent", "audit_auditdigest", "governance_consentevent"}
        for table in sorted(tables):
            with pytest.raises(DatabaseError, match=f"append-only table: TRUNCATE on {table} refused"):
                truncate(table)
        assert AuditEvent.objects.filter(organization=chained).count() == 5
        assert AuditDigest.objects.filter(organization=chained).count() == 1

    def test_the_triggers_can_be_lifted_and_put_back(self, chained):
        editor = connection.schema_editor()  # only its execute(), inside the test's transaction
        append_only.remove(editor, ["audit_auditevent"])
        AuditEvent.objects.filter(organization=chained, seq=5).delete()
        if connection.vendor == "postgresql":
            with transaction.atomic():
                truncate("audit_auditevent")
                assert not AuditEvent.objects.exists()
                transaction.set_rollback(True)
        append_only.install(editor, ["audit_auditevent"])
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.filter(organization=chained, seq=4).delete()
        if connection.vendor == "postgresql":
            with pytest.raises(DatabaseError, match="append-only table: TRUNCATE on audit_auditevent refused"):
                truncate("audit_auditevent")
        assert AuditEvent.objects.filter(organization=chained).count() == 4


def truncate(table):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses a table with foreign key checks pending
        cursor.execute(f"TRUNCATE {table} CASCADE")


def tables_refusing_update() -> set[str]:
    """The tables whose append-only trigger refuses UPDATE, as the database has them."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                           "JOIN pg_proc p ON p.oid = t.tgfoid WHERE p.proname = 'refuse_change_append_only' "
                           "AND t.tgtype & 16 = 16")  # TRIGGER_TYPE_UPDATE
        else:
            cursor.execute("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_no_update'")
        return {name for (name,) in cursor.fetchall()}


def behind_the_triggers_back(sql, params, table="audit_auditevent"):
    """Change an append-only table's rows as an attacker with the table owner's rights would: triggers off."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # a superuser skips ordinary triggers
            cursor.execute(sql, params)
            cursor.execute("SET session_replication_role = origin")
        else:
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            cursor.execute(sql, params)


class TestTamperDetection:
    @pytest.fixture
    def chained(self, org):
        record_changes(org, 10)
        audit.drain_outbox(org.pk)
        audit.write_digest(org)
        return org

    def verify(self, org):
        out = StringIO()
        with pytest.raises(CommandError):
            call_command("verify_audit_chain", "--org", org.slug, stdout=out)
        return out.getvalue()

    def test_an_edited_body_is_found_with_its_seq(self, chained):
        event = AuditEvent.objects.get(organization=chained, seq=4)
        behind_the_triggers_back("UPDATE audit_auditevent SET body = %s WHERE id = %s",
                                 [event.body.replace('"n":3', '"n":33'), event.pk])
        assert "INVALID at seq 4" in self.verify(chained)

    FORGERIES = {  # a column, and a value for it that its body does not hold
        "kind": lambda org: "flow.permitted",
        "occurred_at": lambda org: datetime(2020, 1, 1, tzinfo=dt_timezone.utc),
        "recorded_at": lambda org: datetime(2020, 1, 1, 0, 0, 0, 1, tzinfo=dt_timezone.utc),
        "actor_kind": lambda org: "user",
        "actor_name": lambda org: "mallory",
        "subject_account_id": lambda org: AccountFactory(organization=org).pk,
    }

    @pytest.mark.parametrize("column", FORGERIES)
    def test_a_column_rewritten_without_its_body_is_named(self, chained, column):
        value = self.FORGERIES[column](chained)
        if isinstance(value, datetime):
            value = connection.ops.adapt_datetimefield_value(value)
        event = AuditEvent.objects.get(organization=chained, seq=6)
        behind_the_triggers_back(f"UPDATE audit_auditevent SET {column} = %s WHERE id = %s", [value, event.pk])
        result = verify_chain(chained)
        assert (result.valid, result.first_invalid_seq) == (False, 6)
        assert f"the {column} column differs" in result.problem
        assert f"INVALID at seq 6: the {column} column differs" in self.verify(chained)

    def test_the_api_actor_filter_reads_a_column_verification_vouches_for(self, chained, api):
        event = AuditEvent.objects.get(organization=chained, seq=2)
        behind_the_triggers_back("UPDATE audit_auditevent SET actor_name = %s WHERE id = %s", ["mallory", event.pk])
        listed = api.get("/api/v1/audit-events/", {"actor": "mallory"}).json()["results"]
        assert [e["seq"] for e in listed] == [2] and listed[0]["actor"]["name"] == "system"  # the body says otherwise
        body = api.get("/api/v1/audit-events/verify/").json()
        assert (body["valid"], body["first_invalid_seq"]) == (False, 2) and "actor_name" in body["problem"]

    def test_a_deleted_event_is_found(self, chained):
        behind_the_triggers_back("DELETE FROM audit_auditevent WHERE organization_id = %s AND seq = 7", [chained.pk])
        assert "INVALID at seq 7" in self.verify(chained)

    def test_a_cut_off_tail_is_found_through_the_signed_digest(self, chained):
        behind_the_triggers_back("DELETE FROM audit_auditevent WHERE organization_id = %s AND seq > 8", [chained.pk])
        ChainHead.objects.filter(organization=chained).update(seq=8, hash=AuditEvent.objects.get(
            organization=chained, seq=8).hash)
        result = verify_chain(chained)
        assert not result.valid and result.first_invalid_seq == 9

    def test_a_valid_chain_verifies(self, chained):
        out = StringIO()
        call_command("verify_audit_chain", "--org", chained.slug, stdout=out)
        assert "valid, 10 events checked" in out.getvalue()

    def test_instants_of_any_year_are_written_in_the_one_form_the_columns_are_compared_in(self, chained):
        long_ago = datetime(812, 3, 4, 5, 6, 7, tzinfo=dt_timezone.utc)  # no microseconds either
        assert iso(long_ago) == "0812-03-04T05:06:07.000000Z"
        with transaction.atomic():
            audit.record(organization=chained, kind="consent.granted", actor=SYSTEM, payload={}, occurred_at=long_ago)
        audit.drain_outbox(chained.pk)
        assert json.loads(AuditEvent.objects.get(organization=chained, seq=11).body)["occurred_at"] == iso(long_ago)
        assert verify_chain(chained).valid


class TestDigests:
    def test_digests_chain_and_an_empty_period_still_gets_one(self, org):
        record_changes(org, 4)
        audit.drain_outbox(org.pk)
        first = audit.write_digest(org)
        empty = audit.write_digest(org)
        assert (first.first_seq, first.last_seq, first.event_count) == (1, 4, 4)
        assert (empty.first_seq, empty.last_seq, empty.event_count) == (None, 4, 0)
        assert empty.previous_signature == first.signature and empty.period_start == first.period_end
        statement = json.loads(empty.body)
        assert statement["organization_slug"] == org.slug and statement["algorithm"] == "Ed25519"

    def test_a_rotated_key_still_verifies_old_digests(self, org, settings):
        from audit.signing import generate_private_pem
        record_changes(org, 2)
        audit.drain_outbox(org.pk)
        old = audit.write_digest(org)
        settings.AUDIT_SIGNING_KEY = generate_private_pem()
        record_changes(org, 2)
        audit.drain_outbox(org.pk)
        new = audit.write_digest(org)
        assert old.key_fingerprint != new.key_fingerprint
        assert verify_chain(org).valid

    def test_the_digest_task_signs_every_organization(self, org, other_org):
        from audit.tasks import write_digests
        record_changes(org, 1)
        assert write_digests.apply().get() == 2
        assert AuditDigest.objects.get(organization=org).last_seq == 1
        assert AuditDigest.objects.get(organization=other_org).event_count == 0


class TestExport:
    @pytest.fixture
    def exported(self, org, tmp_path):
        AccountFactory(organization=org)
        record_changes(org, 12)
        audit.drain_outbox(org.pk)
        audit.write_digest(org)
        export_chain(org, tmp_path)
        return tmp_path

    def test_an_export_verifies_without_the_database(self, exported):
        out = StringIO()
        call_command("verify_audit_chain", "--export", str(exported), stdout=out)
        assert "valid, 12 events checked" in out.getvalue()

    def test_a_tampered_export_fails(self, exported):
        path = exported / "events.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()
        event = json.loads(lines[4])
        event["body"] = event["body"].replace('"n":4', '"n":40')
        lines[4] = json.dumps(event)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = verify_export(exported)
        assert not result.valid and result.first_invalid_seq == 5
        with pytest.raises(CommandError):
            call_command("verify_audit_chain", "--export", str(exported), stdout=StringIO())

    def test_an_export_missing_its_last_events_fails(self, exported):
        path = exported / "events.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(lines[:-2]) + "\n", encoding="utf-8")
        assert not verify_export(exported).valid

    def test_keys_given_out_of_band_vouch_for_the_export(self, exported):
        out, err = StringIO(), StringIO()
        call_command("verify_audit_chain", "--export", str(exported), "--trusted-key", self.real_fingerprint(),
                     stdout=out, stderr=err)
        assert "valid, 12 events checked" in out.getvalue() and err.getvalue() == ""

    def test_without_trusted_keys_it_warns_that_the_export_vouches_for_itself(self, exported):
        out, err = StringIO(), StringIO()
        call_command("verify_audit_chain", "--export", str(exported), stdout=out, stderr=err)
        assert "valid, 12 events checked" in out.getvalue()
        assert "keys were read from the export's own public_keys.json" in err.getvalue()
        assert "--trusted-key" in err.getvalue()

    def test_an_export_re_signed_with_another_key_is_refused_given_the_real_fingerprint(self, exported, settings):
        real = self.real_fingerprint()
        impostor = resign(exported, settings)
        assert verify_export(exported).valid  # its own public_keys.json vouches for it: hence the warning
        result = verify_export(exported, trusted_keys={real})
        assert not result.valid
        assert result.problem == f"digest 1: signed by key {impostor[:12]}, which is not one of the trusted keys"
        out = StringIO()
        with pytest.raises(CommandError):
            call_command("verify_audit_chain", "--export", str(exported), "--trusted-key", real.upper(),
                         stdout=out, stderr=StringIO())
        assert "not one of the trusted keys" in out.getvalue()

    def test_a_key_labelled_with_another_keys_fingerprint_is_reported_as_mislabelled(self, exported, settings):
        real = self.real_fingerprint()
        impostor = resign(exported, settings, label=real)
        for trusted in ({real}, None):
            result = verify_export(exported, trusted_keys=trusted)
            assert not result.valid
            assert result.problem == f"key {real[:12]} is mislabelled: its public key's fingerprint is {impostor[:12]}"

    def test_trusted_keys_refuse_an_export_without_any_digest(self, exported):
        real = self.real_fingerprint()
        (exported / "digests.jsonl").write_text("", encoding="utf-8")
        assert verify_export(exported).valid
        result = verify_export(exported, trusted_keys={real})
        assert not result.valid and result.problem == "no digest: nothing is signed by a trusted key"

    def test_a_trusted_key_must_be_a_fingerprint(self, exported):
        with pytest.raises(CommandError, match="64 hex digits"):
            call_command("verify_audit_chain", "--export", str(exported), "--trusted-key", "abc123")

    @staticmethod
    def real_fingerprint():
        return AuditDigest.objects.get().key_fingerprint

    def test_a_forged_digest_fails(self, exported):
        path = exported / "digests.jsonl"
        digest = json.loads(path.read_text(encoding="utf-8"))
        digest["body"] = digest["body"].replace('"event_count":12', '"event_count":11')
        path.write_text(json.dumps(digest) + "\n", encoding="utf-8")
        result = verify_export(exported)
        assert not result.valid and "signature" in result.problem


def resign(directory, settings, *, label=None) -> str:
    """Re-sign an export's digests with a new key and list only that key, labelled `label` if given (as
    someone able to rewrite the export would); returns the new key's fingerprint."""
    from audit import signing
    settings.AUDIT_SIGNING_KEY = signing.generate_private_pem()
    pem = signing.public_pem(signing.signing_key())
    fingerprint = signing.fingerprint(pem)
    path, previous, lines = directory / "digests.jsonl", "", []
    for line in path.read_text(encoding="utf-8").splitlines():
        statement = json.loads(json.loads(line)["body"])
        statement.update(key_fingerprint=label or fingerprint, previous_signature=previous)
        body = canonical_json(statement)
        previous = signing.sign(body)
        lines.append(json.dumps({"body": body, "signature": previous}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "public_keys.json").write_text(json.dumps(
        [{"fingerprint": label or fingerprint, "algorithm": "Ed25519", "public_key_pem": pem}]), encoding="utf-8")
    return fingerprint


class TestAPI:
    def test_events_are_listed_filtered_and_isolated(self, api, other_api, org):
        api.post("/api/v1/policy-rules/", {"scope": "organization", "feature": "chat_compose", "effect": "allow",
                                           "reason": "pilot"}, format="json")
        audit.drain_outbox(org.pk)
        body = api.get("/api/v1/audit-events/", {"kind": "policy.changed"}).json()
        assert [e["kind"] for e in body["results"]] == ["policy.changed"]
        event = body["results"][0]
        assert event["payload"]["after"]["feature"] == "chat_compose" and event["actor"]["kind"] == "token"
        assert other_api.get("/api/v1/audit-events/").json()["results"] == []
        assert other_api.get(f"/api/v1/audit-events/{event['seq']}/").status_code == 404

    def test_verify_endpoint(self, api, org):
        record_changes(org, 3)
        audit.drain_outbox(org.pk)
        audit.write_digest(org)
        body = api.get("/api/v1/audit-events/verify/").json()
        assert body["valid"] is True and body["events_checked"] >= 3 and body["first_invalid_seq"] is None
        assert body["latest_digest"]["last_seq"] == body["head_seq"]

    def test_auditors_read_the_trail(self, auditor_session, org):
        assert auditor_session.get("/api/v1/audit-events/").status_code == 200
        assert auditor_session.get("/api/v1/audit-events/verify/").status_code == 200


def test_time_filters_take_any_offset_python_accepts(api, org):
    # PostgreSQL refuses offsets past 15:59; the API turns instants to UTC before querying
    response = api.get("/api/v1/audit-events/", {"occurred_before": "2026-01-01T10:00:00+16:07"})
    assert response.status_code == 200
    response = api.get("/api/v1/audit-events/", {"occurred_before": "0001-01-01T00:00:00+16:07"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "occurred_before"
