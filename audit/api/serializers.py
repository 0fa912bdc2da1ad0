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


class SignedHeadSerializer(serializers.Serializer):
    body = serializers.CharField(help_text="The canonical JSON that was signed (a format-2 digest).")
    signature = serializers.CharField(help_text="Base64 Ed25519 signature over body's UTF-8.")


class ProvenEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    kind = serializers.CharField()


class ProvenFlowSerializer(serializers.Serializer):
    flow_id = serializers.CharField()
    batch = serializers.IntegerField()
    proven_by = serializers.ChoiceField(["leaf", "event"], help_text=(
        "`leaf`: the flow's own leaf (format 2); `event`: a flow judged before format 2, proven by its own event."))


class InclusionProofSerializer(serializers.Serializer):
    """An inclusion proof file (docs/audit-chain.md): `tools/verify_audit_log.py inclusion FILE --public-key KEY.pem`
    checks it with a public key obtained apart."""

    format = serializers.CharField(help_text="inclusion/1")
    organization = serializers.IntegerField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    entry = serializers.CharField(help_text="The leaf's entry: an event's body, or a flow's entry.")
    audit_path = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 audit path, lowercase hex.")
    tree_head = SignedHeadSerializer()
    event = ProvenEventSerializer(required=False)
    flow = ProvenFlowSerializer(required=False)
    note = serializers.CharField(required=False)


class ConsistencyProofSerializer(serializers.Serializer):
    """A consistency proof file: `tools/verify_audit_log.py consistency FILE --public-key KEY.pem` checks it."""

    format = serializers.CharField(help_text="consistency/1")
    organization = serializers.IntegerField()
    first = SignedHeadSerializer()
    second = SignedHeadSerializer()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 consistency proof, lowercase hex.")


class TreeHeadSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditDigest
        fields = ["id", "tree_size", "root_hash", "period_end", "key_fingerprint", "body", "signature"]


class LatestTreeHeadSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditDigest
        fields = ["id", "tree_size", "root_hash", "period_end"]


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
    latest_tree_head = LatestTreeHeadSerializer(allow_null=True)
    consistent_with_previous = serializers.BooleanField(allow_null=True, help_text=(
        "Whether the previous signed tree head's tree is a prefix of the latest's (its consistency proof, "
        "checked); null without a previous one."))
