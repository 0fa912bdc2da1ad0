import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account
from accounts.permissions import reads_only
from config.api import OrgAPIMixin, gc_paused

from .. import services
from ..models import AIFeature, ConsentEvent, DataCategory, PolicyRule, Purpose, TermsVersion
from ..selectors import (catalog_entries, compiled_policy, decide, effective_policy_for, known_accounts, live_rules,
                         load_catalog, reconsent_index, simulate_rule)
from ..decisions import decision_payload
from .decisions import (DecisionBatchResultSerializer, DecisionBatchSerializer, DecisionRequestSerializer,
                        DecisionSerializer, parse_requests)
from .serializers import (AsOfSerializer, CatalogSerializer, ConsentSerializer, EffectivePolicySerializer,
                          PolicyRuleSerializer, PolicyRuleUpdateSerializer, RuleDeleteSerializer, SimulationSerializer,
                          TermsVersionSerializer, effective_policy_payload)


class CatalogView(OrgAPIMixin, APIView):
    """The data categories, purposes and AI features the organization's switches govern."""

    @extend_schema(responses=CatalogSerializer)
    def get(self, request):
        org = self.organization
        data = {
            "data_categories": catalog_entries(DataCategory, org),
            "purposes": catalog_entries(Purpose, org),
            "features": catalog_entries(AIFeature, org).prefetch_related("data_categories", "purposes"),
        }
        return Response(CatalogSerializer(data).data)


class AccountEffectivePolicyView(OrgAPIMixin, generics.GenericAPIView):
    """/accounts/{id}/effective-policy/: governance's answer about one account of the accounts API."""

    queryset = Account.objects.prefetch_related("groups").distinct()
    filter_backends = []
    pagination_class = None

    @extend_schema(
        parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME, description="As of this instant (past).")],
        responses=EffectivePolicySerializer)
    def get(self, request, pk=None):
        """Every target's effective value for the account, each with the rules that produced it."""
        account = self.get_object()
        at = AsOfSerializer(data=request.query_params)
        at.is_valid(raise_exception=True)
        snapshot, values = effective_policy_for(account, at=at.validated_data.get("at"))
        return Response(effective_policy_payload(account, snapshot, values))


class PolicyRuleFilter(django_filters.FilterSet):
    account = django_filters.CharFilter(field_name="account__user_name")
    feature = django_filters.CharFilter(field_name="feature__key")
    data_category = django_filters.CharFilter(field_name="data_category__key")
    purpose = django_filters.CharFilter(field_name="purpose__key")

    class Meta:
        model = PolicyRule
        fields = ["scope", "group", "account", "feature", "data_category", "purpose", "effect", "locked"]


class PolicyRuleViewSet(OrgAPIMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin,
                        viewsets.ReadOnlyModelViewSet):
    """The switches. A change takes effect when saved; its previous value stays in the history."""

    queryset = live_rules()
    filterset_class = PolicyRuleFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_class(self):
        return PolicyRuleUpdateSerializer if self.action == "partial_update" else PolicyRuleSerializer

    @extend_schema(responses={201: PolicyRuleSerializer, 200: PolicyRuleSerializer})
    def create(self, request, *args, **kwargs):
        """Set a switch: creates the rule (201), or changes the live rule for the same scope and target (200)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule, created = services.set_rule(organization=self.organization, actor=self.actor,
                                          **serializer.validated_data)
        return Response(self.get_serializer(rule).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=PolicyRuleUpdateSerializer, responses=PolicyRuleSerializer)
    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        serializer = PolicyRuleUpdateSerializer(rule, data=request.data, partial=True,
                                                context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        rule = services.update_rule(rule=rule, actor=self.actor, **serializer.validated_data)
        return Response(PolicyRuleSerializer(rule, context=self.get_serializer_context()).data)

    @extend_schema(request=PolicyRuleSerializer, responses=SimulationSerializer)
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    @reads_only
    def simulate(self, request):
        """What-if: the accounts whose effective value would change if this rule were set. Nothing is saved."""
        serializer = PolicyRuleSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.check_rule(organization=self.organization, **data)
        return Response(simulate_rule(self.organization, **data))

    @extend_schema(request=RuleDeleteSerializer, responses={204: None})
    def destroy(self, request, *args, **kwargs):
        rule = self.get_object()
        body = RuleDeleteSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        services.delete_rule(rule=rule, actor=self.actor, reason=body.validated_data.get("reason", ""))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TermsVersionViewSet(OrgAPIMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The governed vendor's terms versions. Publishing one is audited; it may take effect in the future."""

    queryset = TermsVersion.objects.prefetch_related("covers__data_category", "covers__purpose")
    serializer_class = TermsVersionSerializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        covers = [(c["data_category"], c["purpose"]) for c in data.pop("covers", [])]
        serializer.instance = services.publish_terms(organization=self.organization, actor=self.actor,
                                                     covers=covers, **data)


class ConsentFilter(django_filters.FilterSet):
    account = django_filters.CharFilter(field_name="account__user_name")
    feature = django_filters.CharFilter(field_name="feature__key")
    data_category = django_filters.CharFilter(field_name="data_category__key")
    purpose = django_filters.CharFilter(field_name="purpose__key")
    terms_version = django_filters.CharFilter(field_name="terms_version__version")

    class Meta:
        model = ConsentEvent
        fields = ["account", "feature", "data_category", "purpose", "action", "mechanism", "terms_version"]


class ConsentViewSet(OrgAPIMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Consent history, append-only: grant and revoke are both one POST. Each shows freely_given and stale."""

    queryset = ConsentEvent.objects.select_related("account", "feature", "data_category", "purpose",
                                                   "terms_version")
    serializer_class = ConsentSerializer
    filterset_class = ConsentFilter

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["reconsent"] = reconsent_index(self.organization)
            context["feature_pairs"] = load_catalog(self.organization).feature_pairs
        return context

    def perform_create(self, serializer):
        serializer.instance = services.record_consent(organization=self.organization, actor=self.actor,
                                                      **serializer.validated_data)


class DecisionView(OrgAPIMixin, APIView):
    """May this flow happen? One request, or a batch under "requests" (up to 10,000)."""

    @extend_schema(
        request=PolymorphicProxySerializer("DecisionInput", [DecisionRequestSerializer, DecisionBatchSerializer],
                                           resource_type_field_name=None),
        responses=PolymorphicProxySerializer("DecisionOutput", [DecisionSerializer, DecisionBatchResultSerializer],
                                             resource_type_field_name=None))
    @reads_only
    def post(self, request):
        organization = self.organization
        compiled = compiled_policy(organization)
        with gc_paused():
            is_batch, parsed = parse_requests(
                request.data, catalog=compiled.snapshot.catalog,
                resolve_accounts=lambda names: known_accounts(compiled, organization, names))
            results = [decision_payload(decide(organization, ids, category, purpose, at, compiled=compiled), names)
                       for ids, names, category, purpose, at in parsed]
        if is_batch:
            return Response({"results": results, "policy_version": compiled.policy_version})
        return Response(results[0])
