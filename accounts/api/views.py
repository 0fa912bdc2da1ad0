import django_filters
from rest_framework import mixins, viewsets

from config.api import OrgAPIMixin

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
