import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api import OrgAPIMixin
from governance.api.serializers import AsOfSerializer, EffectivePolicySerializer, effective_policy_payload
from governance.selectors import effective_policy_for

from .. import services
from ..models import Account, Group
from .serializers import AccountSerializer, GroupSerializer


class GroupViewSet(OrgAPIMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Group.objects.all()
    serializer_class = GroupSerializer
    filterset_fields = ["display_name", "external_id"]

    def perform_create(self, serializer):
        serializer.instance = services.create_group(organization=self.organization, actor=self.actor,
                                                    **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_group(group=serializer.instance, actor=self.actor,
                                                    **serializer.validated_data)


class AccountFilter(django_filters.FilterSet):
    group = django_filters.NumberFilter(field_name="groups", help_text="Accounts in this group (id).")
    user_name = django_filters.CharFilter()

    class Meta:
        model = Account
        fields = ["active", "group", "user_name", "external_id"]


class AccountViewSet(OrgAPIMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """People governed by the organization. Accounts are deactivated (active=false), never deleted."""

    queryset = Account.objects.prefetch_related("groups").distinct()
    serializer_class = AccountSerializer
    filterset_class = AccountFilter

    def perform_create(self, serializer):
        serializer.instance = services.create_account(organization=self.organization, actor=self.actor,
                                                      **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_account(account=serializer.instance, actor=self.actor,
                                                      **serializer.validated_data)

    @extend_schema(
        parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME, description="As of this instant (past).")],
        responses=EffectivePolicySerializer)
    @action(detail=True, methods=["get"], url_path="effective-policy", filter_backends=[], pagination_class=None)
    def effective_policy(self, request, pk=None):
        """Every target's effective value for the account, each with the rules that produced it."""
        account = self.get_object()
        at = AsOfSerializer(data=request.query_params)
        at.is_valid(raise_exception=True)
        snapshot, values = effective_policy_for(account, at=at.validated_data.get("at"))
        return Response(effective_policy_payload(account, snapshot, values))

