"""What the workers owe of flows: stored batches not judged yet and webhook deliveries not made yet."""
from datetime import timedelta

from django.db.models import Count, Min, Sum
from django.utils import timezone

from audit.operations import Backlog

from .models import FlowBatch, WebhookDelivery


def backlog() -> list[Backlog]:
    batches = FlowBatch.objects.filter(status=FlowBatch.Status.RECEIVED).aggregate(
        n=Count("id"), oldest=Min("received_at"), flows=Sum("flow_count"))
    deliveries = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).aggregate(
        n=Count("id"), oldest=Min("created_at"))
    failed = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.FAILED,
                                            created_at__gte=timezone.now() - timedelta(days=1)).count()
    return [
        Backlog("flow batches", batches["n"], batches["oldest"], f"{batches['flows'] or 0} flows waiting"),
        Backlog("webhook deliveries", deliveries["n"], deliveries["oldest"], f"{failed} given up in the last 24 h"),
    ]
