"""The chain has one writer: outbox events and flow events both go through audit.ledger.append."""
import re
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from audit import chain, ledger
from audit import services as audit
from audit.actors import SYSTEM
from audit.models import AuditEvent, OutboxEntry
from audit.selectors import verify_chain
from flows.batches import process_batch, receive_batch
from flows.models import FlowBatch
from flows.validation import validate_flows
from governance.selectors import compiled_policy

from ..factories import AccountFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_APPS = ("accounts", "governance", "audit", "console", "reports", "config", "scim", "flows")


def stored_batch(org, account, flow_id):
    with transaction.atomic():
        return receive_batch(organization=org, actor=SYSTEM, flows=validate_flows(
            {"flows": [{"flow_id": flow_id, "accounts": [account.user_name], "data_category": "telemetry.usage",
                        "purpose": "service.provision", "destination": "vendor.service",
                        "occurred_at": timezone.now().isoformat()}]},
            catalog=compiled_policy(org).snapshot.catalog,
            resolve_accounts=lambda names: {account.user_name: account.pk}))


def test_a_fault_in_the_writer_stops_outbox_events_and_flow_events_alike(org, monkeypatch):
    # given: a chain with what the fixtures recorded, a pending change and a stored flow batch
    account = AccountFactory(organization=org)
    audit.drain_outbox(org.pk)
    chained = AuditEvent.objects.filter(organization=org).count()
    with transaction.atomic():
        audit.record(organization=org, kind="group.created", actor=SYSTEM, payload={"n": 1})
    batch = stored_batch(org, account, "f-1")

    # when: linking hashes fails inside the one writer
    def broken(prev_hash, body):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(chain, "link_hash", broken)
    with pytest.raises(RuntimeError, match="injected fault"):
        audit.drain_outbox(org.pk)
    with pytest.raises(RuntimeError, match="injected fault"):
        process_batch(batch.pk)

    # then: neither kind got in, and both go in once the writer works again
    assert AuditEvent.objects.filter(organization=org).count() == chained
    assert OutboxEntry.objects.filter(organization=org).exists()
    assert FlowBatch.objects.get(pk=batch.pk).status == FlowBatch.Status.RECEIVED
    monkeypatch.undo()
    audit.drain_outbox(org.pk)
    process_batch(batch.pk)
    kinds = list(AuditEvent.objects.filter(organization=org, seq__gt=chained).order_by("seq")
                 .values_list("kind", flat=True))
    assert kinds == ["group.created", "flow.batch"]
    assert verify_chain(org).valid


def test_nothing_but_the_ledger_writes_event_rows_or_moves_a_chain_head():
    writes = re.compile(r"copy_rows\(\s*AuditEvent|AuditEvent\.objects\.(create|bulk_create)|"
                        r"ChainHead\.objects\.[^\n]*\.update\([^)]*\bseq=|EVENT_COLUMNS\s*=")
    offenders = [str(path.relative_to(ROOT)) for app in PRODUCT_APPS if (ROOT / app).is_dir()
                 for path in (ROOT / app).rglob("*.py")
                 if "migrations" not in path.parts and path != ROOT / "audit" / "ledger.py"
                 and writes.search(path.read_text())]
    assert offenders == []


def test_while_the_chain_is_stalled_only_the_row_it_waits_on_may_be_appended(org):
    with transaction.atomic():
        head = ledger.locked_head(org.pk)
        head.stalled_outbox_id = 10**9
        with pytest.raises(ledger.ChainStalled):
            ledger.append(head, [ledger.Entry("group.created", timezone.now(), SYSTEM.as_dict(), None, {})])
