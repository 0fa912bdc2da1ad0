"""`pipeline_status`: what the workers still owe, and a non-zero exit for a monitor when it waits too long."""
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from accounts import services as accounts
from audit import services as audit
from audit.actors import SYSTEM
from audit.models import OutboxEntry
from flows.batches import process_batch, receive_batch
from flows.models import FlowBatch
from flows.validation import validate_flows
from governance.selectors import compiled_policy

pytestmark = pytest.mark.django_db


def status(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("pipeline_status", "--json", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def by_name(report):
    return {row["name"]: row for row in report["backlog"]}


def test_nothing_owed_exits_zero(org):
    audit.drain_outbox(org.pk)
    audit.write_digest(org)
    report, _ = status("--max-age", "60")
    assert report["late"] == [] and all(row["pending"] == 0 for row in report["backlog"])


def test_an_undrained_change_and_an_unjudged_batch_are_late(org, people):
    with transaction.atomic():  # changes whose drain never ran: the broker lost the task
        accounts.create_group(organization=org, actor=SYSTEM, display_name="Legal")
    OutboxEntry.objects.update(occurred_at=timezone.now() - timedelta(minutes=10))
    compiled = compiled_policy(org)
    batch = receive_batch(organization=org, actor=SYSTEM, flows=validate_flows(
        {"flows": [{"flow_id": "f1", "accounts": [people[0].user_name], "data_category": "telemetry.usage",
                    "purpose": "service.provision", "destination": "ours", "occurred_at": timezone.now().isoformat()}]},
        catalog=compiled.snapshot.catalog, resolve_accounts=lambda names: {people[0].user_name: people[0].pk}))
    FlowBatch.objects.filter(pk=batch.pk).update(received_at=timezone.now() - timedelta(minutes=5))

    with pytest.raises(SystemExit) as exit_:
        status("--max-age", "120")

    assert exit_.value.code == 1
    report, err = status()  # without --max-age it only reports
    rows = by_name(report)
    assert rows["audit outbox"]["pending"] == OutboxEntry.objects.count() > 0
    assert rows["audit outbox"]["age_seconds"] >= 600
    assert rows["flow batches"]["pending"] == 1 and "1 flows waiting" in rows["flow batches"]["detail"]
    assert err == ""

    audit.drain_outbox(org.pk)
    process_batch(batch.pk)
    assert status("--max-age", "120")[0]["late"] == []


def test_an_organization_whose_events_no_digest_signs_for_two_periods_is_named(org, settings):
    with transaction.atomic():
        accounts.create_group(organization=org, actor=SYSTEM, display_name="Legal")
    audit.drain_outbox(org.pk)
    assert by_name(status()[0])["signed digests"]["pending"] == 0  # recorded just now

    settings.AUDIT_DIGEST_MINUTES = 0  # (audit events can't be backdated) every unsigned event is overdue now
    assert by_name(status()[0])["signed digests"]["pending"] == 1
    audit.write_digest(org)
    assert by_name(status()[0])["signed digests"]["pending"] == 0


def test_the_table_reads_for_a_person(org):
    out = io.StringIO()
    call_command("pipeline_status", stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split("  ")[0].strip() for line in lines] == ["audit outbox", "flow batches", "webhook deliveries",
                                                              "signed digests"]
