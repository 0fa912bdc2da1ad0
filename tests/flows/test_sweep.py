"""The beat sweeps re-drive what the database holds when the task that should carry it was lost: audit's
sweep the outbox, the flows sweep stored batches and webhook deliveries."""
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db import transaction
from django.utils import timezone

from audit.actors import SYSTEM
from audit.models import AuditEvent, OutboxEntry
from audit.tasks import sweep
from flows.batches import receive_batch
from flows.models import FlowBatch, WebhookDelivery, WebhookEndpoint
from flows.tasks import sweep_flows
from flows.validation import validate_flows
from governance.selectors import compiled_policy

from ..factories import AccountFactory

pytestmark = pytest.mark.django_db


class Accept(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_sweep_chains_outbox_rows_and_judges_batches_whose_tasks_were_lost(org, settings, eager_celery):
    settings.AUDIT_SWEEP_AFTER_SECONDS = settings.FLOW_SWEEP_AFTER_SECONDS = 0
    account = AccountFactory(organization=org)
    # given: work stored in the database, as if its on-commit task had been lost (no commit hooks ran)
    with transaction.atomic():
        OutboxEntry.objects.create(organization=org, kind="group.created", actor=SYSTEM.as_dict(), payload={},
                                   occurred_at=timezone.now() - timedelta(minutes=5))
        compiled = compiled_policy(org)
        batch = receive_batch(organization=org, actor=SYSTEM, flows=validate_flows(
            {"flows": [{"flow_id": "lost", "accounts": [account.user_name], "data_category": "telemetry.usage",
                        "purpose": "service.provision", "destination": "vendor.service",
                        "occurred_at": timezone.now().isoformat()}]},
            catalog=compiled.snapshot.catalog, resolve_accounts=lambda names: {account.user_name: account.pk}))
    server = HTTPServer(("127.0.0.1", 0), Accept)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the test receiver is on loopback
    endpoint = WebhookEndpoint.objects.create(organization=org, url=f"http://127.0.0.1:{server.server_port}/",
                                              secret="s" * 16)
    stale = WebhookDelivery.objects.create(endpoint=endpoint, body="{}")
    WebhookDelivery.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=7))

    # when
    try:
        redriven = {**sweep.apply().get(), **sweep_flows.apply().get()}
    finally:
        server.shutdown()

    # then
    assert redriven["outbox"] == [org.pk] and redriven["flow_batches"] == [batch.pk]
    assert redriven["webhook_deliveries"] == [stale.pk]
    assert not OutboxEntry.objects.filter(organization=org).exists()
    assert AuditEvent.objects.filter(organization=org, kind="group.created").exists()
    assert FlowBatch.objects.get(pk=batch.pk).status == "done"
    assert WebhookDelivery.objects.get(pk=stale.pk).status == "delivered"
