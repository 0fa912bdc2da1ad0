import orjson
from rest_framework import serializers

from ..models import AuditDigest, AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    """An event as chained: what it says comes from the hashed body, not from the filter columns."""

    actor = serializers.SerializerMethodField()
    subject_account = serializers.SerializerMethodField()
    payload = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ["seq", "kind", "occurred_at", "recorded_at", "actor", "subject_account", "payload", "prev_hash",
                  "hash", "body"]

    def _body(self, event) -> dict:
        cached = getattr(event, "_parsed_body", None)
        if cached is None:
            cached = event._parsed_body = orjson.loads(event.body)
        return cached

    def get_actor(self, event) -> dict:
        return self._body(event)["actor"]

    def get_subject_account(self, event) -> int | None:
        return self._body(event)["subject_account"]

    def get_payload(self, event) -> dict:
        return self._body(event)["payload"]


class AuditDigestSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditDigest
        fields = ["period_start", "period_end", "first_seq", "last_seq", "event_count", "head_hash", "algorithm",
                  "key_fingerprint", "previous_signature", "signature", "body"]


class StallSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The seq the change would take.")
    outbox_id = serializers.IntegerField()
    since = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()


class VerificationSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    events_checked = serializers.IntegerField()
    first_invalid_seq = serializers.IntegerField(allow_null=True)
    problem = serializers.CharField()
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField()
    pending = serializers.IntegerField(help_text="Changes recorded but not chained yet.")
    oldest_pending_at = serializers.DateTimeField(allow_null=True, help_text="When the oldest of them happened.")
    stalled = StallSerializer(allow_null=True, help_text="Set when the chain stops at a change it cannot chain.")
    latest_digest = AuditDigestSerializer(allow_null=True)
