"""Thin Celery wrappers: ids in, a service call, retries on database trouble."""
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from accounts.models import Organization

from . import services

RETRY = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": (OperationalError, InterfaceError),
         "retry_backoff": True, "retry_backoff_max": 60, "max_retries": None}


@shared_task(**RETRY)
def drain_outbox(organization_id: int) -> int:
    """Chain an organization's pending outbox rows. Safe to run twice, or twice at once."""
    return services.drain_outbox(organization_id)


@shared_task(acks_late=True, expires=60)
def sweep_outbox() -> list[int]:
    """Re-drive organizations whose outbox rows have waited too long (a lost task, a dead worker)."""
    stale = services.organizations_with_stale_outbox(timedelta(seconds=settings.AUDIT_SWEEP_AFTER_SECONDS))
    for organization_id in stale:
        drain_outbox.delay(organization_id)
    return stale


@shared_task(**RETRY)
def write_digests() -> int:
    """Sign every organization's chain head; periods without events get a digest too."""
    count = 0
    for organization in Organization.objects.order_by("pk"):
        services.drain_outbox(organization.pk)
        services.write_digest(organization)
        count += 1
    return count
