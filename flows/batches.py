"""Reported data flows: stored whole at the door, judged by workers against the policy as it was.

A batch is accepted whole or refused whole (flows.validation). Accepted, it is stored as one row in
the request's transaction and answered 202; a worker then judges every flow as of its `occurred_at`,
writes the flows with their verdicts as leaves of the organization's log followed by one chained
event for the batch (docs/audit-chain.md), and updates the exposure rollups, all in one transaction that also marks the batch done. A worker
that dies halfway leaves the batch as it was received, for the next attempt.
"""
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import ledger
from config.tasks import enqueue_on_commit
from governance.selectors import compiled_policy

from .judging import judge, write_judged
from .models import FlowBatch, TelemetryFlow, Verdict
from .webhooks import notify_violations


@transaction.atomic
def receive_batch(*, organization, actor, flows: list[list]) -> FlowBatch:
    """Store a validated batch; a worker is asked to judge it once this transaction commits."""
    batch = FlowBatch.objects.create(organization=organization, flow_count=len(flows),
                                     payload=orjson.dumps(flows), received_at=timezone.now(),
                                     submitted_by=actor.as_dict())
    # with the broker down the batch is stored all the same, and the sweep judges it later
    enqueue_on_commit("flows.tasks.process_flow_batch", batch.pk)
    return batch


def process_batch(batch_id: int) -> dict:
    """Judge a stored batch, exactly once: a second run, or one after a crash, finds it done or redoes it whole."""
    try:
        with transaction.atomic():
            batch = FlowBatch.objects.select_for_update().filter(pk=batch_id).first()
            if batch is None or batch.status == FlowBatch.Status.DONE:
                return batch.counts if batch else {}
            ledger.raise_if_stalled(batch.organization_id)  # before judging flows that could not be appended
            organization = batch.organization
            flows = orjson.loads(bytes(batch.payload))
            existing = set(TelemetryFlow.objects.filter(organization=organization,
                                                        flow_id__in=[f[0] for f in flows])
                           .values_list("flow_id", flat=True))
            fresh = [f for f in flows if f[0] not in existing]
            compiled = compiled_policy(organization)
            judged = judge(organization, compiled, fresh)
            head = ledger.locked_head(organization.pk)
            counts = write_judged(organization, batch, judged, head, compiled.memberships,
                                  duplicates=len(flows) - len(fresh))
            FlowBatch.objects.filter(pk=batch.pk).update(status=FlowBatch.Status.DONE, processed_at=timezone.now(),
                                                         counts=counts, attempts=batch.attempts + 1)
            if counts.get(Verdict.VIOLATION):
                notify_violations(organization, batch.pk)
    except ledger.ChainStalled as exc:
        # Appending these flows would put them ahead of changes made before them: the batch waits,
        # stored, and the sweep brings it back once the chain goes on (docs/operations.md).
        return {"waiting": str(exc)}
    return counts


def stale_batches(older_than: timedelta) -> list[int]:
    cutoff = timezone.now() - older_than
    return list(FlowBatch.objects.filter(status=FlowBatch.Status.RECEIVED, received_at__lte=cutoff)
                .order_by("received_at").values_list("pk", flat=True)[:settings.FLOW_SWEEP_LIMIT])
