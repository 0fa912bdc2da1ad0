"""Flow ingestion, flow lists, batch status, exposure and violation webhooks: the API of data flows."""
import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.api.proofs import NOT_COVERED, NOT_FOUND, TREE_HEAD, answered, id_parameters
from audit.api.serializers import InclusionProofSerializer
from config import outbound
from config.api import OrgAPIMixin, StrictModelSerializer, gc_paused
from config.filters import UTCDateTimeFilter
from governance.selectors import compiled_policy, known_accounts

from .. import batches, leaves, selectors, validation, webhooks
from ..errors import InvalidBatch
from ..models import FlowBatch, TelemetryFlow, WebhookEndpoint


class FlowInSerializer(serializers.Serializer):
    """Documents one reported flow (validated by `flows.validation.validate_flows`)."""

    flow_id = serializers.CharField(max_length=200, help_text="The reporter's id; resending it changes nothing.")
    accounts = serializers.ListField(child=serializers.CharField(max_length=254), min_length=1,
                                     max_length=validation.MAX_ACCOUNTS_PER_FLOW, help_text="user_names whose data flowed.")
    data_category = serializers.CharField(max_length=100)
    purpose = serializers.CharField(max_length=100)
    destination = serializers.CharField(max_length=200, help_text="e.g. vendor.model_training")
    occurred_at = serializers.DateTimeField()
    volume = serializers.IntegerField(min_value=0, max_value=2**62 - 1, required=False)


class FlowBatchInSerializer(serializers.Serializer):
    flows = FlowInSerializer(many=True, min_length=1, max_length=validation.MAX_FLOWS)


class BatchAcceptedSerializer(serializers.Serializer):
    batch_id = serializers.IntegerField()
    flows = serializers.IntegerField()
    status = serializers.CharField()


class FlowBatchSerializer(serializers.ModelSerializer):
    counts = serializers.DictField(child=serializers.IntegerField())

    class Meta:
        model = FlowBatch
        fields = ["id", "status", "flow_count", "counts", "received_at", "processed_at", "attempts"]


class TelemetryFlowSerializer(serializers.ModelSerializer):
    accounts = serializers.SerializerMethodField()

    class Meta:
        model = TelemetryFlow
        fields = ["id", "flow_id", "batch", "occurred_at", "accounts", "data_category", "purpose", "destination",
                  "volume", "verdict", "blocking_accounts", "reasons", "policy_version", "audit_seq", "recorded_at"]

    def get_accounts(self, flow) -> list[str]:
        return [link.account.user_name for link in flow.account_links.all()]


class FlowFilter(django_filters.FilterSet):
    account = django_filters.CharFilter(field_name="account_links__account__user_name", distinct=True)
    occurred_after = UTCDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UTCDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = TelemetryFlow
        fields = ["verdict", "account", "data_category", "purpose", "destination", "occurred_after",
                  "occurred_before", "batch"]


class FlowViewSet(OrgAPIMixin, mixins.CreateModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Report flows in batches (POST, 202) and list the judged ones with their verdicts."""

    queryset = TelemetryFlow.objects.prefetch_related("account_links__account")
    serializer_class = TelemetryFlowSerializer
    filterset_class = FlowFilter

    @extend_schema(request=FlowBatchInSerializer, responses={202: BatchAcceptedSerializer})
    def create(self, request, *args, **kwargs):
        """Accept a batch of up to 10,000 flows whole, or refuse it whole naming each bad item."""
        organization = self.organization
        compiled = compiled_policy(organization)
        try:
            with gc_paused():
                validated = validation.validate_flows(
                    request.data, catalog=compiled.snapshot.catalog,
                    resolve_accounts=lambda names: known_accounts(compiled, organization, names))
        except InvalidBatch as refused:
            raise exceptions.ValidationError(refused.errors) from None
        batch = batches.receive_batch(organization=organization, actor=self.actor, flows=validated)
        return Response({"batch_id": batch.pk, "flows": batch.flow_count, "status": batch.status},
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[TREE_HEAD], responses={200: InclusionProofSerializer, 404: NOT_FOUND,
                                                      409: NOT_COVERED})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None,
            queryset=TelemetryFlow.objects.all())
    def proof(self, request, pk=None):
        """The inclusion proof file of a judged flow (its entry is its leaf) against a signed tree head.

        Keyed by the flow's id (`id` in the list). A flow judged before log format 2 is proven by its own event:
        the answer says so (`flow.proven_by` is `event`). A 409 until a signed tree head covers it."""
        query = id_parameters(request, optional=["tree_head"])
        flow = self.get_object()
        return Response(answered(lambda: leaves.proof_of(flow, digest_id=query["tree_head"])))


class FlowBatchViewSet(OrgAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Where a batch stands: received or done, and its flows counted by verdict."""

    queryset = FlowBatch.objects.defer("payload")
    serializer_class = FlowBatchSerializer


class ExposureQuerySerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day (default: 30 days ago).")
    until = serializers.DateField(required=False, help_text="Last day, included (default: today).")

    def validate(self, data):
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise serializers.ValidationError({"since": "Must not be after until."})
        return data


class ExposureView(OrgAPIMixin, APIView):
    """The rollups behind the charts: per group x category x purpose x destination, over a range of days."""

    @extend_schema(parameters=[OpenApiParameter("since", OpenApiTypes.DATE), OpenApiParameter("until", OpenApiTypes.DATE)],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request):
        query = ExposureQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(selectors.exposure(self.organization, **query.validated_data))


class WebhookEndpointSerializer(StrictModelSerializer):
    # not a URLField: its validator refuses the single-label names on-premise receivers have
    url = serializers.CharField(max_length=500, help_text=(
        f"http(s) URL of a public host (HTTPS only in production), port {outbound.PORTS}, no user:password@; "
        "every address the host resolves to must be public unless the host is in WEBHOOK_ALLOWED_HOSTS."))
    secret = serializers.CharField(write_only=True, min_length=16, max_length=128)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "secret", "active", "created_at"]
        read_only_fields = ["created_at"]

    def validate_url(self, value):
        try:
            outbound.check(value)
        except outbound.RefusedTarget as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["url"] = outbound.without_credentials(data["url"])
        return data


class WebhookEndpointViewSet(OrgAPIMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
                             mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Endpoints that receive each batch's new violations, signed with HMAC-SHA256 (X-Signature-256)."""

    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_create(self, serializer):
        serializer.instance = webhooks.create_webhook(organization=self.organization, actor=self.actor,
                                                     **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = webhooks.update_webhook(endpoint=serializer.instance, actor=self.actor,
                                                     **serializer.validated_data)

    def perform_destroy(self, instance):
        webhooks.delete_webhook(endpoint=instance, actor=self.actor)

