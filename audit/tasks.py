"""Thin Celery wrappers: ids in, a service call, retries on database trouble."""
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from config.tasks import RETRY

from . import operations, selectors, services


@shared_task(**RETRY)
def drain_outbox(organization_id: int) -> int:
    """Chain an organization's pending outbox rows. Safe to run twice, or twice at once."""
    return services.drain_outbox(organization_id)


@shared_task(**RETRY)
def write_digests() -> int:
    """Sign every organization's chain head; periods without events get a digest too."""
    count = 0
    for organization in selectors.organizations().order_by("pk"):
        services.drain_outbox(organization.pk)
        services.write_digest(organization)
        count += 1
    return count


@shared_task(acks_late=True, expires=60)
def sweep() -> dict[str, list[int]]:
    """Re-drive the outbox rows no task carries any more: a task lost with Redis, one enqueued while
    the broker was down, or one a SIGKILLed worker held (Redis would only hand it back after its
    visibility timeout). Every task it enqueues is safe to run twice. A chain stalled on a row it
    cannot chain is logged at ERROR every round, so it is never quiet. (Flow batches and webhook
    deliveries have their own sweep, flows.tasks.sweep_flows.)"""
    stalled = operations.log_stalled_chains()
    organizations = services.organizations_with_stale_outbox(timedelta(seconds=settings.AUDIT_SWEEP_AFTER_SECONDS))
    for organization_id in organizations:
        drain_outbox.delay(organization_id)
    return {"stalled_chains": stalled, "outbox": organizations}
