"""Thin Celery wrappers: ids in, a service call, retries on database trouble."""
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from config.tasks import RETRY

from . import batches, webhooks


@shared_task(**RETRY)
def process_flow_batch(batch_id: int) -> dict:
    """Judge a stored batch of flows. Safe to run twice: a batch is judged in one transaction, once."""
    return batches.process_batch(batch_id)


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
def sweep_flows() -> dict[str, list[int]]:
    """Re-drive the flow batches and webhook deliveries no task carries any more (as audit.tasks.sweep
    does for the outbox). Every task it enqueues is safe to run twice."""
    def redrive(ids, task):
        for item_id in ids:
            task.delay(item_id)
        return ids

    return {
        "flow_batches": redrive(batches.stale_batches(
            timedelta(seconds=settings.FLOW_SWEEP_AFTER_SECONDS)), process_flow_batch),
        "webhook_deliveries": redrive(webhooks.stale_deliveries(), deliver_webhook),
    }
