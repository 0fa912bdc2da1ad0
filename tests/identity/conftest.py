import json

from audit import services as audit
from audit.models import AuditEvent


def events(org, kind: str) -> list[dict]:
    """The chained events of `kind` in `org`, oldest first (the outbox drained first)."""
    audit.drain_outbox(org.pk)
    return [json.loads(body) for body in AuditEvent.objects.filter(organization=org, kind=kind)
            .order_by("seq").values_list("body", flat=True)]
