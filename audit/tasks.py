"""Thin Celery wrappers: ids in, a service call, retries on database trouble."""
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from accounts.models import Organization

from . import flows, operations, services, webhooks

RETRY = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": (OperationalError, InterfaceError),
         "retry_backoff": True, "retry_backoff_max": 60, "max_retries": None}


@shared_task(**RETRY)
def drain_outbox(organization_id: int) -> int:
    """Chain an organization's pending outbox rows. Safe to run twice, or twice at once."""
    return services.drain_outbox(organization_id)


@shared_task(**RETRY)
def write_digests() -> int:
    """Sign every organization's chain head; periods without events get a digest too."""
    count = 0
    for organization in Organization.objects.order_by("pk"):
        services.drain_outbox(organization.pk)
        services.write_digest(organization)
        count += 1
    return count


@shared_task(**RETRY)
def process_flow_batch(batch_id: int) -> dict:
    """Judge a stored batch of flows. Safe to run twice: a batch is judged in one transaction, once."""
    return flows.process_batch(batch_id)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def deliver_webhook(self, delivery_id: int) -> bool:
    """POST a violation delivery; retried with exponential backoff (up to about 4 hours), then marked failed."""
    try:
        return webhooks.deliver(delivery_id)
    except webhooks.DeliveryFailed as exc:
        if self.request.retries >= self.max_retries:
            webhooks.give_up(delivery_id)
            return False
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries * 60, 3600)) from exc


@shared_task(acks_late=True, expires=60)
def sweep() -> dict[str, list[int]]:
    """Re-drive the work the database holds but no task carries any more: a task lost with Redis,
    one enqueued while the broker was down, or one a SIGKILLed worker held (Redis would only hand
    it back after its visibility timeout). Every task it enqueues is safe to run twice. A chain
    stalled on a row it cannot chain is logged at ERROR every round, so it is never quiet."""
    def redrive(ids, task):
        for item_id in ids:
            task.delay(item_id)
        return ids

    return {
        "stalled_chains": operations.log_stalled_chains(),
        "outbox": redrive(services.organizations_with_stale_outbox(
            timedelta(seconds=settings.AUDIT_SWEEP_AFTER_SECONDS)), drain_outbox),
        "flow_batches": redrive(flows.stale_batches(
            timedelta(seconds=settings.FLOW_SWEEP_AFTER_SECONDS)), process_flow_batch),
        "webhook_deliveries": redrive(webhooks.stale_deliveries(), deliver_webhook),
    }
