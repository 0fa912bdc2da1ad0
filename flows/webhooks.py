"""Violation webhooks: endpoints set through the API, and a signed POST per judged batch with violations,
retried with backoff."""
import hashlib
import hmac
import http.client
import time
from datetime import timedelta

import orjson
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.actors import Actor
from audit.models import EventKind
from config import outbound
from config.tasks import enqueue_on_commit

from .models import TelemetryFlow, Verdict, WebhookDelivery, WebhookEndpoint

TIMEOUT_SECONDS = 10
MAX_VIOLATIONS_PER_DELIVERY = 1000
STALE_AFTER = timedelta(hours=6)  # the task's own retries span about 4 hours


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex: what the receiver recomputes to trust a delivery."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def notify_violations(organization, batch_id: int) -> list[int]:
    """Owe each active endpoint a delivery of the batch's violations (call inside the judging transaction)."""
    endpoints = list(WebhookEndpoint.objects.filter(organization=organization, active=True))
    if not endpoints:
        return []
    violations = list(TelemetryFlow.objects.filter(batch_id=batch_id, verdict=Verdict.VIOLATION)
                      .order_by("leaf_index")
                      .values("flow_id", "occurred_at", "data_category", "purpose", "destination", "volume",
                              "blocking_accounts", "reasons", "audit_seq", "leaf_index")[:MAX_VIOLATIONS_PER_DELIVERY])
    body = orjson.dumps({"event": "flow.violation", "organization": organization.slug, "batch": batch_id,
                         "violations": violations}, option=orjson.OPT_UTC_Z).decode()
    deliveries = WebhookDelivery.objects.bulk_create([WebhookDelivery(endpoint=e, body=body) for e in endpoints])
    ids = [d.pk for d in deliveries]
    for delivery_id in ids:
        enqueue_on_commit("flows.tasks.deliver_webhook", delivery_id)
    return ids


class DeliveryFailed(Exception):
    """The endpoint did not take the delivery; the task retries it later."""


def deliver(delivery_id: int) -> bool:
    """POST one delivery to an address its endpoint's host was just checked to resolve to (see outbound).
    Returns True once delivered (also when it already was) and False when the endpoint is refused: that
    delivery is recorded as failed and nothing is sent. Raises DeliveryFailed for what a retry may cure."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status == WebhookDelivery.Status.DELIVERED:
        return True
    body = delivery.body.encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Webhook-Timestamp": timestamp,
               "X-Webhook-Delivery": str(delivery.pk),
               "X-Signature-256": "sha256=" + signature(delivery.endpoint.secret, timestamp, body)}
    try:
        status = outbound.post(outbound.check(delivery.endpoint.url), body, headers, timeout=TIMEOUT_SECONDS)
        ok = 200 <= status < 300
        error = "" if ok else f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    except outbound.UnresolvedHost as exc:
        ok, error = False, str(exc)
    except outbound.RefusedTarget as exc:
        _record(delivery, WebhookDelivery.Status.FAILED, f"Refused, nothing sent: {exc}")
        return False
    except (OSError, http.client.HTTPException) as exc:
        ok, error = False, (str(exc) or type(exc).__name__)[:500]
    _record(delivery, WebhookDelivery.Status.DELIVERED if ok else WebhookDelivery.Status.PENDING, error)
    if not ok:
        raise DeliveryFailed(error)
    return True


def _record(delivery: WebhookDelivery, status: str, error: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=delivery.attempts + 1, last_error=error, status=status,
        delivered_at=timezone.now() if status == WebhookDelivery.Status.DELIVERED else None)


def stale_deliveries() -> list[int]:
    """Deliveries still pending long after every retry would have run: their retry was lost."""
    cutoff = timezone.now() - STALE_AFTER
    return list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, created_at__lte=cutoff)
                .order_by("created_at").values_list("pk", flat=True)[:500])


def give_up(delivery_id: int) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED)


def _webhook_state(endpoint: WebhookEndpoint) -> dict:
    # never the secret, nor credentials an endpoint saved before URLs were checked may hold
    return {"id": endpoint.pk, "url": outbound.without_credentials(endpoint.url), "active": endpoint.active}


@transaction.atomic
def create_webhook(*, organization, actor: Actor, url: str, secret: str, active: bool = True) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.create(organization=organization, url=url, secret=secret, active=active)
    audit.record(organization=organization, kind=EventKind.WEBHOOK_CHANGED, actor=actor,
                 payload={"action": "created", "after": _webhook_state(endpoint)})
    return endpoint


@transaction.atomic
def update_webhook(*, endpoint: WebhookEndpoint, actor: Actor, **changes) -> WebhookEndpoint:
    before = _webhook_state(endpoint)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    endpoint.save()
    audit.record(organization=endpoint.organization, kind=EventKind.WEBHOOK_CHANGED, actor=actor,
                 payload={"action": "changed", "before": before, "after": _webhook_state(endpoint),
                          "secret_rotated": "secret" in changes})
    return endpoint


@transaction.atomic
def delete_webhook(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    audit.record(organization=endpoint.organization, kind=EventKind.WEBHOOK_CHANGED, actor=actor,
                 payload={"action": "deleted", "before": _webhook_state(endpoint)})
    endpoint.delete()
