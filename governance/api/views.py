import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import OrgAPIMixin

from .. import services
from ..models import AIFeature, DataCategory, PolicyRule, Purpose
from ..selectors import catalog_entries, live_rules
from .serializers import (CatalogSerializer, PolicyRuleSerializer, PolicyRuleUpdateSerializer,
                          RuleDeleteSerializer)


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

    @extend_schema(request=RuleDeleteSerializer, responses={204: None})
    def destroy(self, request, *args, **kwargs):
        rule = self.get_object()
        body = RuleDeleteSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        services.delete_rule(rule=rule, actor=self.actor, reason=body.validated_data.get("reason", ""))
        return Response(status=status.HTTP_204_NO_CONTENT)
