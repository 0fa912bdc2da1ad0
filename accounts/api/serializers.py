from rest_framework import serializers

from config.api import OrgScopedRelatedField, StrictModelSerializer

from ..models import Account, Group


class GroupSerializer(StrictModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "display_name", "external_id", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # Uniqueness per organization is checked by the service, which knows the organization.
        validators = []


class AccountSerializer(StrictModelSerializer):
    groups = OrgScopedRelatedField(Group, many=True, required=False, help_text="Group ids.")
    email = serializers.EmailField(required=False, allow_blank=True)

    class Meta:
        model = Account
        fields = ["id", "user_name", "email", "display_name", "external_id", "active", "groups", "created_at",
                  "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        validators = []
